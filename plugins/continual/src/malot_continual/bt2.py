"""BT² (Zhou et al., CVPR 2023, "BT²: Backward-compatible Training with Basis Transformation"): upgrade a
retrieval encoder without re-indexing the gallery.

The new model's embedding ``φ_new(x)`` is widened with ``k`` extra dimensions ``ψ(x)`` and turned by an orthonormal
basis transformation ``B`` (``BᵀB = I``): ``e(x) = B·[φ_new(x); ψ(x)]``. A backward-compatibility loss trains the
first ``d_old`` coordinates of ``e`` to live in the old embedding space (InfoNCE between ``e(x)[:d_old]`` and the
old gallery vector of the same item, temperature ``τ``), so new queries search the *old* index; because ``B`` is
orthonormal, the new model's own geometry is preserved exactly (distances between ``e`` vectors equal those between
``[φ_new; ψ]``) and the compatibility constraint costs the new model nothing. The method is the paper's; the
orthogonality of ``B`` comes from torch's ``orthogonal`` parametrisation (the library part), the rest is ours.

malot use (:func:`upgrade_index`): a saved dense or UDR retriever folder holds the old index (``index/vectors.npy``)
and the corpus; a new encoder (a sentence-transformers folder or a trained UDR model, whose query encoder is used)
is upgraded on the corpus's own (query text, old vector) pairs, and :func:`upgraded_retriever` returns malot's own
retriever class over the *old* index with the upgraded query encoder — nothing is re-encoded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch

    from malot.retrieval.base import CorpusRetriever
    from malot_continual.core.nets import Bt2Head

__all__ = [
    "Bt2Input",
    "Bt2Output",
    "Bt2Upgrade",
    "bt2_head",
    "bt2_upgrade",
    "train_bt2",
    "upgrade_index",
    "upgraded_retriever",
]

_PAPER = "BT^2: Backward-compatible Training with Basis Transformation (Zhou et al., CVPR 2023)"
_WEIGHTS = "bt2.safetensors"
_CONFIG = "bt2.json"


def bt2_head(d_new: int, d_old: int, extra: int) -> Bt2Head:
    """``x ↦ B·[x; tanh(W x + b)]`` with ``B`` orthogonal (``d_new + extra`` square) — the BT² transformation."""
    from malot_continual.core.nets import Bt2Head

    if d_new < 1 or d_old < 1 or extra < 0:
        raise ToolError(f"bad BT² sizes: new {d_new}, old {d_old}, extra {extra}")
    if d_new + extra < d_old:
        raise ToolError(
            f"the new embedding ({d_new} + {extra} extra dims) is narrower than the old one ({d_old})",
            hint=f"use at least {d_old - d_new} extra dimensions",
        )
    return Bt2Head(d_new, d_old, extra)


def _info_nce(queries: torch.Tensor, keys: torch.Tensor, tau: float) -> torch.Tensor:
    import torch

    q = torch.nn.functional.normalize(queries, dim=1)
    k = torch.nn.functional.normalize(keys, dim=1)
    return torch.nn.functional.cross_entropy(q @ k.T / tau, torch.arange(len(q)))


def train_bt2(
    new_vectors: torch.Tensor,
    old_vectors: torch.Tensor,
    *,
    extra: int = 32,
    epochs: int = 200,
    lr: float = 0.01,
    tau: float = 0.05,
    batch_size: int = 256,
    seed: int = 0,
) -> Bt2Head:
    """Fit the BT² head on pairs (new embedding of item i, old gallery vector of item i) with the BC InfoNCE loss."""
    import torch

    from malot_continual.core.data import check_features

    check_features(new_vectors, "new embeddings")
    check_features(old_vectors, "old gallery vectors")
    if len(new_vectors) != len(old_vectors):
        raise ToolError(f"{len(new_vectors)} new embeddings but {len(old_vectors)} old vectors", hint="pair them 1:1")
    if len(new_vectors) < 2:
        raise ToolError("BT² needs at least two training pairs (the contrastive loss has no negatives otherwise)")
    torch.manual_seed(seed)
    head = bt2_head(int(new_vectors.shape[1]), int(old_vectors.shape[1]), extra)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    d_old = int(old_vectors.shape[1])
    for _ in range(epochs):
        order = torch.randperm(len(new_vectors), generator=g)
        for begin in range(0, len(order), batch_size):
            idx = order[begin : begin + batch_size]
            if len(idx) < 2:
                continue
            loss = _info_nce(head(new_vectors[idx])[:, :d_old], old_vectors[idx], tau)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    head.eval()
    return head


def _load_query_model(path: str | Path) -> tuple[Any, str | None]:
    """A sentence-transformers query model from a folder (a trained UDR folder gives its query encoder)."""
    from malot.retrieval.encoders import load_sentence_transformer
    from malot.retrieval.udr.model import DualEncoder

    if DualEncoder.is_saved_model(path):
        config = json.loads((Path(path) / "udr.json").read_text(encoding="utf-8"))
        return load_sentence_transformer(Path(path) / "query_encoder"), str(config.get("instruction", ""))
    return load_sentence_transformer(path), None


@dataclass
class Bt2Upgrade:
    """A trained BT² head with the new query encoder it sits on; ``encode_queries`` gives old-index-compatible rows."""

    head: Bt2Head
    new_encoder: str
    query_model: Any = None

    @property
    def d_old(self) -> int:
        """The old index's dimension."""
        return int(self.head.d_old)

    def transform(self, new_vectors: Any, *, full: bool = False) -> Any:
        """BT² embeddings of new-encoder rows: the first ``d_old`` (unit length) or, ``full``, the whole ``e``."""
        import numpy as np
        import torch

        with torch.no_grad():
            out = self.head(torch.as_tensor(np.asarray(new_vectors, np.float32)))
        if not full:
            out = torch.nn.functional.normalize(out[:, : self.d_old], dim=1)
        return out.numpy().astype(np.float32)

    def encode_new(self, texts: Sequence[str]) -> Any:
        """The new encoder's own unit-length embeddings."""
        import numpy as np

        if self.query_model is None:
            self.query_model, _ = _load_query_model(self.new_encoder)
        out = self.query_model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(out, np.float32)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> Any:
        """Queries embedded by the new encoder and mapped into the old index's space."""
        return self.transform(self.encode_new(texts))

    def save(self, directory: str | Path) -> Path:
        """Write ``bt2.safetensors`` and ``bt2.json`` (sizes and the new encoder's path) into ``directory``."""
        from safetensors.torch import save_file

        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(folder / _WEIGHTS))
        config = {
            "d_new": self.head.d_new,
            "d_old": self.head.d_old,
            "extra": self.head.extra,
            "new_encoder": str(Path(self.new_encoder).resolve()),
        }
        (folder / _CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        # the kind malot's retrieval loader looks up (entry point ``malot.retrieval.upgrades``: bt2)
        (folder / "upgrade.json").write_text(json.dumps({"kind": "bt2"}) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, directory: str | Path) -> Bt2Upgrade:
        """Read an upgrade written by :meth:`save`."""
        from safetensors.torch import load_file

        folder = Path(directory)
        if not (folder / _CONFIG).is_file():
            raise ToolError(f"{folder} holds no BT² upgrade", hint="create one with the bt2_upgrade tool")
        config = json.loads((folder / _CONFIG).read_text(encoding="utf-8"))
        head = bt2_head(int(config["d_new"]), int(config["d_old"]), int(config["extra"]))
        head.load_state_dict(load_file(str(folder / _WEIGHTS)))
        head.eval()
        return cls(head=head, new_encoder=str(config["new_encoder"]))


def _saved_index(index_dir: Path) -> tuple[str, Any, Any, str | None]:
    """Kind, corpus, old vectors and (UDR) instruction of a saved dense or UDR retriever folder."""
    from malot.retrieval.base import CORPUS_FILE, read_manifest
    from malot.retrieval.corpus import load_corpus
    from malot.retrieval.index import VectorIndex

    manifest = read_manifest(index_dir)
    kind = str(manifest["kind"])
    if kind not in ("dense", "udr"):
        raise ToolError(f"{index_dir} holds a {kind} retriever", hint="BT² upgrades dense or udr indexes")
    corpus = load_corpus(index_dir / CORPUS_FILE, require_proofs=False)
    index = VectorIndex.load(index_dir / "index", backend="numpy")
    instruction: str | None = None
    if kind == "udr":
        instruction = ""
        ref = Path(str((manifest.get("params") or {}).get("model", "model")))
        model_dir = ref if ref.is_absolute() else index_dir / ref
        config = model_dir / "udr.json"
        instruction = (
            str(json.loads(config.read_text(encoding="utf-8")).get("instruction", "")) if config.is_file() else ""
        )
    return kind, corpus, index, instruction


def _query_texts(kind: str, demos: Sequence[Any], instruction: str | None) -> list[str]:
    from malot.retrieval.text import query_text

    if kind == "udr":
        return [query_text(d, instruction or "") for d in demos]
    return [d.input_text for d in demos]


def upgrade_index(
    index_dir: str | Path,
    new_encoder: str | Path,
    out: str | Path,
    *,
    extra: int = 32,
    epochs: int = 200,
    lr: float = 0.01,
    tau: float = 0.05,
    seed: int = 0,
) -> Bt2Upgrade:
    """Train a BT² upgrade of ``new_encoder`` against the old index in ``index_dir``; save it to ``out``."""
    import torch

    folder = Path(index_dir)
    kind, corpus, index, instruction = _saved_index(folder)
    if len(corpus) != len(index):
        raise ToolError(f"the corpus has {len(corpus)} items but the index {len(index)} vectors", hint="rebuild it")
    upgrade = Bt2Upgrade(head=bt2_head(1, 1, 0), new_encoder=str(new_encoder))
    new = torch.from_numpy(upgrade.encode_new(_query_texts(kind, list(corpus), instruction)))
    upgrade.head = train_bt2(
        new, torch.from_numpy(index.vectors), extra=extra, epochs=epochs, lr=lr, tau=tau, seed=seed
    )
    upgrade.save(out)
    return upgrade


def upgraded_retriever(
    index_dir: str | Path, upgrade: Bt2Upgrade | str | Path, *, target_split: str | None = None
) -> CorpusRetriever:
    """malot's own retriever over the *old* saved index, with queries embedded by the BT²-upgraded new encoder.

    Also the ``malot.retrieval.upgrades`` entry point ``bt2``: ``[retrieval] query_upgrade = DIR`` (with
    ``index_dir`` the old index) makes malot's provers retrieve through it. ``target_split`` arms the leakage guard.
    """
    from malot.retrieval.dense import DenseRetriever
    from malot.retrieval.encoders import SentenceEncoder
    from malot.retrieval.udr.model import DualEncoder
    from malot.retrieval.udr.retriever import UDRRetriever

    up = upgrade if isinstance(upgrade, Bt2Upgrade) else Bt2Upgrade.load(upgrade)
    kind, corpus, index, instruction = _saved_index(Path(index_dir))
    if index.dim != up.d_old:
        raise ToolError(f"the upgrade maps into {up.d_old} dims, the index has {index.dim}", hint="wrong index folder")

    if kind == "udr":

        class UpgradedDual(DualEncoder):
            def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> Any:
                return up.encode_queries(texts, batch_size)

        dual = UpgradedDual(None, None, instruction=instruction or "")
        return UDRRetriever(corpus, dual, index=index, target_split=target_split)

    class UpgradedEncoder(SentenceEncoder):
        def encode(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> Any:
            return up.encode_queries(texts)

    return DenseRetriever(corpus, UpgradedEncoder(up.new_encoder), index=index, target_split=target_split)


class Bt2Input(BaseModel):
    """Arguments of the ``bt2_upgrade`` tool."""

    index_dir: str = Field(description="a saved dense or udr retriever folder (malot retrieval index --out DIR)")
    new_encoder: str = Field(description="the new encoder: sentence-transformers folder or trained UDR model folder")
    out: str = Field(description="folder to write the upgrade (bt2.safetensors, bt2.json)")
    extra: int = Field(default=32, ge=0, description="extra dimensions ψ appended before the basis transformation")
    epochs: int = Field(default=200, gt=0)
    lr: float = Field(default=0.01, gt=0)
    tau: float = Field(default=0.05, gt=0, description="temperature of the backward-compatibility InfoNCE")
    seed: int = 0


class Bt2Output(BaseModel):
    """Result of the ``bt2_upgrade`` tool."""

    upgrade: str
    d_old: int
    d_new: int
    extra: int
    orthonormality_error: float = Field(description="max |BᵀB − I|")
    self_recall_at_1: float = Field(description="upgraded corpus queries finding their own item in the old index")


@tool(
    name="bt2_upgrade",
    family="continual",
    paper=_PAPER,
    heavy=True,
    tags=("retrieval", "backward-compatible", "embeddings", "index", "upgrade", "continual"),
)
def bt2_upgrade(args: Bt2Input) -> Bt2Output:
    """Upgrade a retrieval encoder without re-indexing (BT²): new queries search the old dense/UDR index.

    Learns an orthonormal basis transformation of the new embeddings (plus extra dims) whose first d_old
    coordinates are compatible with the saved index; load it with ``malot_continual.bt2.upgraded_retriever``.
    """
    import numpy as np
    import torch

    upgrade = upgrade_index(
        args.index_dir,
        args.new_encoder,
        args.out,
        extra=args.extra,
        epochs=args.epochs,
        lr=args.lr,
        tau=args.tau,
        seed=args.seed,
    )
    b = upgrade.head.basis_matrix()
    error = float((b.T @ b - torch.eye(b.shape[0])).abs().max())
    retriever = upgraded_retriever(args.index_dir, upgrade)
    ranked = retriever.rank_many(list(retriever.corpus), 1)
    hits = np.mean([r[0][0] == i for i, r in enumerate(ranked)]) if ranked else 0.0
    return Bt2Output(
        upgrade=str(Path(args.out)),
        d_old=upgrade.d_old,
        d_new=int(upgrade.head.d_new),
        extra=int(upgrade.head.extra),
        orthonormality_error=error,
        self_recall_at_1=float(hits),
    )
