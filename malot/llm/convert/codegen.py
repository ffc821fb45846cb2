"""Convert a CodeGen / CodeGen2 checkpoint to a GPT-J checkpoint, which vLLM serves natively.

CodeGen is GPT-J with one fused, block-interleaved attention projection: ``attn.qkv_proj.weight`` (``3E x E``) is
``mp_num`` blocks (the tensor-parallel shards it was trained with), and each block holds, in this order, its share
of the **query**, **value** and **key** rows. Reading block ``b`` as ``[q_b, v_b, k_b]`` and concatenating the
``q_b`` (and ``k_b``, ``v_b``) over the blocks gives GPT-J's ``q_proj``, ``k_proj`` and ``v_proj``, with heads in
the order CodeGen uses them. Every other tensor keeps its name; rotary embedding (GPT-J style, interleaved pairs on
the first ``rotary_dim`` channels), the parallel attention + MLP residual block and the biased ``lm_head`` are the
same in both architectures.

The block count is not in ``config.json``; it is hard-coded in each modelling file. What was found (read through the
code-search mirror in this session):

* transformers' own ``CodeGenForCausalLM`` (``transformers/models/codegen/modeling_codegen.py``, checked in
  transformers 5.19 installed here): ``mp_num = 4``. This covers CodeGen1 (``Salesforce/codegen-*-mono/multi/nl``)
  and any checkpoint without custom modelling code.
* CodeGen2-1B (``Salesforce/codegen2-1B``, ``trust_remote_code`` ``modeling_codegen.py``; read from the mirror
  ``jamesr66a/codegen2-1B`` on GitHub, a copy of the hub repository): ``mp_num = 8`` under a ``# TPU-v3`` comment,
  with the same ``[q, v, k]`` split.
* CodeGen2-3.7B, -7B and -16B: their ``modeling_codegen.py`` files were not readable here, so no value is assumed
  for them. A checkpoint folder that ships its ``modeling_codegen.py`` (as hub snapshots of all CodeGen2 sizes do)
  is read for its ``mp_num = N`` assignment, so the value comes from the checkpoint's own code.

:func:`detect_mp_num` applies that (``--mp-num`` overrides it). After writing, a logits self-check
(:mod:`malot.llm.convert.codegen_check`) runs the first layers of transformers' CodeGen and of the converted GPT-J
on random tokens and fails the conversion if they disagree.

Input: ``model.safetensors`` / sharded ``model-*.safetensors`` (with or without an index), or ``pytorch_model.bin``
/ sharded ``pytorch_model-*.bin`` with ``pytorch_model.bin.index.json`` (the published CodeGen2 checkpoints use
``.bin`` files); ``.bin`` files are memory-mapped (``torch.load(mmap=True, weights_only=True)``). Output: safetensors
(one file, or shards of at most ``max_shard_bytes`` with an index), written tensor by tensor, in the source dtype.
The conversion is atomic: everything is written to a temporary folder next to ``dst`` that is renamed into place
only after the self-check passed, and removed on any failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from malot._version import __version__
from malot.errors import ConfigError
from malot.llm.convert.safetensors_stream import PlannedTensor, StreamingSafetensorsWriter, sha256_file
from malot.llm.infill import CODEGEN2

if TYPE_CHECKING:
    import torch

__all__ = [
    "MANIFEST_NAME",
    "TRANSFORMERS_MP_NUM",
    "ConversionManifest",
    "SourceWeights",
    "convert_codegen_to_gptj",
    "detect_mp_num",
    "gptj_config",
    "read_codegen_config",
    "split_qkv",
]

#: The manifest written into every converted folder.
MANIFEST_NAME = "malot-conversion.json"

#: The block count transformers' CodeGenForCausalLM hard-codes.
TRANSFORMERS_MP_NUM = 4

#: Files carried over unchanged: tokenizer, chat template and generation defaults.
CARRIED_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
)

#: Source tensors that are buffers, not weights (older checkpoints saved them); they are not written.
_DROPPED = re.compile(r"\.attn\.(causal_mask|masked_bias|bias)$")
_QKV = re.compile(r"^(transformer\.h\.\d+\.attn\.)qkv_proj\.weight$")
_KEPT = re.compile(
    r"^(transformer\.wte\.weight|transformer\.ln_f\.(weight|bias)|lm_head\.(weight|bias)"
    r"|transformer\.h\.\d+\.(ln_1\.(weight|bias)|attn\.out_proj\.weight|mlp\.fc_(in|out)\.(weight|bias)))$"
)
_MP_NUM_ASSIGNMENT = re.compile(r"^[ \t]*mp_num[ \t]*=[ \t]*(\d+)[ \t]*(?:#.*)?$", re.MULTILINE)


class SourceFile(BaseModel):
    """One file of the source or the output: name, size and SHA-256."""

    name: str
    bytes: int
    sha256: str


class ConversionManifest(BaseModel):
    """What ``malot-conversion.json`` records about one conversion."""

    format: str = "malot.codegen-to-gptj"
    version: int = 1
    malot_version: str = __version__
    created_at: str
    source: str
    source_model_type: str
    source_architectures: list[str]
    source_files: list[SourceFile]
    mp_num: int
    mp_num_reason: str
    tensors_in: int
    tensors_out: int
    dropped_tensors: list[str] = Field(default_factory=list)
    untied_embeddings: bool = False
    carried_files: list[str] = Field(default_factory=list)
    infill_sentinels: dict[str, int] = Field(default_factory=dict)
    missing_sentinels: list[str] = Field(default_factory=list)
    output_files: list[SourceFile] = Field(default_factory=list)
    self_check: dict[str, Any] | None = None
    seconds: float = 0.0


def read_codegen_config(src: Path) -> dict[str, Any]:
    """``src/config.json`` if it describes a CodeGen model; a clear :class:`ConfigError` otherwise."""
    path = src / "config.json"
    if not src.is_dir():
        raise ConfigError(f"{src} is not a folder", hint="pass the folder of a CodeGen / CodeGen2 checkpoint")
    if not path.is_file():
        raise ConfigError(f"{src} has no config.json", hint="pass the folder of a CodeGen / CodeGen2 checkpoint")
    try:
        config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    architectures = config.get("architectures") or []
    if config.get("model_type") != "codegen" and "CodeGenForCausalLM" not in architectures:
        kind = config.get("model_type") or "unknown"
        raise ConfigError(
            f"{src} is a {kind!r} checkpoint ({', '.join(architectures) or 'no architectures'}), not CodeGen",
            hint="only CodeGen / CodeGen2 checkpoints (model_type 'codegen') need converting; CodeGen2.5 and other "
            "Llama-architecture models load in vLLM directly",
        )
    return config


def detect_mp_num(src: Path, config: dict[str, Any]) -> tuple[int, str]:
    """The number of blocks in ``qkv_proj`` and why: the checkpoint's own ``modeling_codegen.py`` or transformers'.

    Raises :class:`ConfigError` when the config names custom modelling code that is not in the folder (the value
    cannot be known then; pass ``mp_num`` explicitly).
    """
    code = src / "modeling_codegen.py"
    if code.is_file():
        values = sorted(
            {int(v) for v in _MP_NUM_ASSIGNMENT.findall(code.read_text(encoding="utf-8", errors="replace"))}
        )
        if len(values) == 1:
            return values[0], f"modeling_codegen.py in the checkpoint sets mp_num = {values[0]}"
        found = ", ".join(map(str, values)) or "none"
        raise ConfigError(
            f"{code} does not set one mp_num (found: {found})",
            hint="pass --mp-num with the block count its attention uses",
        )
    auto_map = config.get("auto_map") or {}
    if any("modeling_codegen" in str(v) for v in auto_map.values()):
        raise ConfigError(
            f"{src}/config.json names custom modelling code (auto_map) but modeling_codegen.py is not in the folder, "
            "so the qkv block count is unknown",
            hint="pass --mp-num (CodeGen2-1B's modelling code uses 8), or download the checkpoint with its .py files",
        )
    return TRANSFORMERS_MP_NUM, "no custom modelling code: transformers' CodeGenForCausalLM uses mp_num = 4"


def gptj_config(config: dict[str, Any]) -> dict[str, Any]:
    """The GPT-J ``config.json`` for a CodeGen ``config``: same sizes, rotary dim, activation, norms and tokens.

    GPT-J on vLLM requires untied embeddings, so ``tie_word_embeddings`` is always false (a tied source gets its
    embedding copied into ``lm_head.weight``). ``rotary_dim`` missing in the source means the whole head rotates.
    """
    n_embd, n_head = int(config["n_embd"]), int(config["n_head"])
    rotary_dim = config.get("rotary_dim") or n_embd // n_head
    out: dict[str, Any] = {
        "architectures": ["GPTJForCausalLM"],
        "model_type": "gptj",
        "vocab_size": int(config["vocab_size"]),
        "n_positions": int(config.get("n_positions") or config.get("n_ctx") or 2048),
        "n_embd": n_embd,
        "n_layer": int(config["n_layer"]),
        "n_head": n_head,
        "rotary_dim": int(rotary_dim),
        "n_inner": config.get("n_inner"),
        "activation_function": config.get("activation_function", "gelu_new"),
        "resid_pdrop": config.get("resid_pdrop", 0.0),
        "embd_pdrop": config.get("embd_pdrop", 0.0),
        "attn_pdrop": config.get("attn_pdrop", 0.0),
        "layer_norm_epsilon": config.get("layer_norm_epsilon", 1e-5),
        "initializer_range": config.get("initializer_range", 0.02),
        "use_cache": True,
        "bos_token_id": config.get("bos_token_id"),
        "eos_token_id": config.get("eos_token_id"),
        "tie_word_embeddings": False,
    }
    if config.get("pad_token_id") is not None:
        out["pad_token_id"] = config["pad_token_id"]
    dtype = config.get("dtype") or config.get("torch_dtype")
    if dtype:
        out["torch_dtype"] = dtype
    return out


def split_qkv(weight: torch.Tensor, mp_num: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a fused ``qkv_proj`` weight (``3E x E``) of ``mp_num`` ``[q, v, k]`` blocks into ``(q, k, v)``."""
    rows, cols = weight.shape
    if rows % (3 * mp_num):
        raise ConfigError(f"qkv_proj has {rows} rows, not divisible into {mp_num} blocks of [q, v, k]")
    blocks = weight.reshape(mp_num, 3, rows // (3 * mp_num), cols)
    q, v, k = (blocks[:, i].reshape(rows // 3, cols).contiguous() for i in range(3))
    return q, k, v


class SourceWeights:
    """Tensor-at-a-time access to a checkpoint's weights (safetensors or PyTorch ``.bin`` files)."""

    def __init__(self, src: Path) -> None:
        self.src = src
        self.files = self._weight_files(src)
        self._where: dict[str, Path] = {}
        self._st: dict[Path, Any] = {}
        self._bin: dict[Path, dict[str, Any]] = {}
        for path in self.files:
            for name in self._open(path):
                self._where.setdefault(name, path)

    @staticmethod
    def _weight_files(src: Path) -> list[Path]:
        for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
            index = src / index_name
            if index.is_file():
                weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
                files = sorted({src / str(f) for f in weight_map.values()})
                missing = [f.name for f in files if not f.is_file()]
                if missing:
                    raise ConfigError(f"{index} lists missing files: {', '.join(missing)}", hint="finish the download")
                return files
        for pattern in ("*.safetensors", "pytorch_model*.bin"):
            files = sorted(src.glob(pattern))
            if files:
                return files
        raise ConfigError(
            f"{src} has no weights (model*.safetensors or pytorch_model*.bin)", hint="finish downloading the checkpoint"
        )

    def _open(self, path: Path) -> list[str]:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            handle: Any = safe_open(str(path), framework="pt")
            self._st[path] = handle
            return list(handle.keys())
        import torch

        try:
            state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        except RuntimeError:  # the legacy (non-zip) format cannot be memory-mapped
            state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ConfigError(f"{path} does not hold a state dict")
        self._bin[path] = state
        return [str(k) for k in state]

    def names(self) -> list[str]:
        """Every tensor name, in file order."""
        return list(self._where)

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def shape_dtype(self, name: str) -> tuple[tuple[int, ...], str]:
        """Shape and safetensors dtype code of ``name`` without reading its data."""
        from malot.llm.convert.safetensors_stream import safetensors_dtype

        path = self._where[name]
        if path in self._st:
            piece = self._st[path].get_slice(name)
            return tuple(int(d) for d in piece.get_shape()), str(piece.get_dtype())
        tensor = self._bin[path][name]
        return tuple(tensor.shape), safetensors_dtype(tensor.dtype)

    def read(self, name: str) -> torch.Tensor:
        """Tensor ``name`` (its own memory for safetensors; a memory-mapped view for ``.bin``)."""
        path = self._where.get(name)
        if path is None:
            raise ConfigError(f"tensor {name!r} is not in {self.src}")
        if path in self._st:
            tensor: torch.Tensor = self._st[path].get_tensor(name)
            return tensor
        found: torch.Tensor = self._bin[path][name]
        return found

    def close(self) -> None:
        """Drop the open handles."""
        self._st.clear()
        self._bin.clear()

    def __enter__(self) -> SourceWeights:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Producer = Callable[[], "torch.Tensor"]


def _plan(
    weights: SourceWeights, config: dict[str, Any], mp_num: int
) -> tuple[list[tuple[PlannedTensor, Producer]], list[str], bool]:
    """Output tensors (planned shape/dtype and how to make each), the dropped source names, and whether untied."""
    out: list[tuple[PlannedTensor, Producer]] = []
    dropped: list[str] = []
    n_head, n_embd = int(config["n_head"]), int(config["n_embd"])
    if n_head % mp_num or n_embd % mp_num:
        raise ConfigError(
            f"mp_num={mp_num} does not divide n_head={n_head} and n_embd={n_embd}",
            hint="pass the block count the checkpoint's modelling code uses (--mp-num)",
        )
    split_cache: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def qkv_part(name: str, index: int) -> Producer:
        def make() -> torch.Tensor:
            if name not in split_cache:
                split_cache.clear()
                split_cache[name] = split_qkv(weights.read(name), mp_num)
            return split_cache[name][index]

        return make

    def plain(name: str) -> Producer:
        return lambda: weights.read(name)

    unknown: list[str] = []
    for name in weights.names():
        shape, dtype = weights.shape_dtype(name)
        if _DROPPED.search(name):
            dropped.append(name)
            continue
        qkv = _QKV.match(name)
        if qkv:
            rows, cols = shape
            for index, part in enumerate(("q_proj", "k_proj", "v_proj")):
                planned = PlannedTensor(f"{qkv.group(1)}{part}.weight", dtype, (rows // 3, cols))
                out.append((planned, qkv_part(name, index)))
            continue
        if not _KEPT.match(name):
            unknown.append(name)
            continue
        out.append((PlannedTensor(name, dtype, shape), plain(name)))
    if unknown:
        raise ConfigError(
            f"{weights.src} has tensors a CodeGen checkpoint should not have: {', '.join(unknown[:5])}",
            hint="this does not look like a CodeGen / CodeGen2 causal LM checkpoint",
        )
    untied = False
    if "lm_head.weight" not in weights:
        shape, dtype = weights.shape_dtype("transformer.wte.weight")
        out.append((PlannedTensor("lm_head.weight", dtype, shape), plain("transformer.wte.weight")))
        untied = True
    if "lm_head.bias" not in weights:  # CodeGen's head always has a bias; a checkpoint without one means zeros
        import torch

        from malot.llm.convert.safetensors_stream import torch_dtype

        _, dtype = weights.shape_dtype("transformer.wte.weight")
        vocab = int(config["vocab_size"])
        out.append(
            (PlannedTensor("lm_head.bias", dtype, (vocab,)), lambda: torch.zeros(vocab, dtype=torch_dtype(dtype)))
        )
    return out, dropped, untied


def _shards(plan: list[tuple[PlannedTensor, Producer]], max_bytes: int) -> list[list[tuple[PlannedTensor, Producer]]]:
    shards: list[list[tuple[PlannedTensor, Producer]]] = [[]]
    size = 0
    for item in plan:
        if shards[-1] and size + item[0].nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(item)
        size += item[0].nbytes
    return shards


def _write_weights(tmp: Path, plan: list[tuple[PlannedTensor, Producer]], max_bytes: int) -> list[str]:
    shards = _shards(plan, max_bytes)
    names = (
        ["model.safetensors"]
        if len(shards) == 1
        else [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    )
    weight_map: dict[str, str] = {}
    for file_name, shard in zip(names, shards, strict=True):
        with StreamingSafetensorsWriter(tmp / file_name, [p for p, _ in shard], metadata={"format": "pt"}) as writer:
            for planned, make in shard:
                writer.write(planned.name, make())
                weight_map[planned.name] = file_name
    if len(shards) > 1:
        total = sum(p.nbytes for p, _ in plan)
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
    return names


def _carry_files(src: Path, tmp: Path) -> list[str]:
    carried = []
    for name in CARRIED_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, tmp / name)
            carried.append(name)
    has_tokenizer = "tokenizer.json" in carried or {"vocab.json", "merges.txt"} <= set(carried)
    if not has_tokenizer and "tokenizer.model" not in carried:
        raise ConfigError(
            f"{src} has no tokenizer (tokenizer.json, or vocab.json + merges.txt)",
            hint="copy the tokenizer files of the checkpoint into the folder (vLLM needs them next to the weights)",
        )
    return carried


def _sentinels(tmp: Path) -> tuple[dict[str, int], list[str]]:
    """The CodeGen2 infill sentinels the carried tokenizer knows as single tokens, and those it lacks."""
    import importlib

    tf: Any = importlib.import_module("transformers")
    try:
        tokenizer = tf.AutoTokenizer.from_pretrained(str(tmp))
    except Exception as exc:  # transformers raises many types for a broken tokenizer
        raise ConfigError(f"the checkpoint's tokenizer does not load: {type(exc).__name__}: {exc}") from None
    found: dict[str, int] = {}
    missing: list[str] = []
    for token in CODEGEN2.sentinels:
        ids = tokenizer(token, add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            found[token] = int(ids[0])
        else:
            missing.append(token)
    return found, missing


@contextmanager
def _atomic_folder(dst: Path) -> Iterator[Path]:
    """A temporary folder next to ``dst``, renamed to ``dst`` when the block succeeds and removed when it fails."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.partial-", dir=dst.parent))
    try:
        yield tmp
        os.rename(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _file_record(path: Path, *, hash_files: bool) -> SourceFile:
    return SourceFile(name=path.name, bytes=path.stat().st_size, sha256=sha256_file(path) if hash_files else "")


def convert_codegen_to_gptj(
    src: str | Path,
    dst: str | Path,
    *,
    mp_num: int | None = None,
    self_check: bool = True,
    check_layers: int = 2,
    check_tokens: int = 16,
    max_shard_bytes: int = 5 << 30,
    hash_files: bool = True,
    log: Callable[[str], None] | None = None,
) -> ConversionManifest:
    """Convert the CodeGen checkpoint folder ``src`` into a new GPT-J checkpoint folder ``dst``; return the manifest.

    ``mp_num`` overrides :func:`detect_mp_num`. ``self_check`` runs :func:`~malot.llm.convert.codegen_check.
    check_logits` on ``check_layers`` layers and ``check_tokens`` random tokens before ``dst`` appears.
    ``dst`` must not exist. Raises :class:`ConfigError` (nothing left behind) on bad input or a failed check.
    """
    say = log or (lambda message: print(message, file=sys.stderr))
    source, target = Path(src).expanduser().resolve(), Path(dst).expanduser().resolve()
    if target.exists():
        raise ConfigError(f"{target} already exists", hint="choose a new destination folder or remove the old one")
    started = time.perf_counter()
    config = read_codegen_config(source)
    if mp_num is None:
        mp_num, reason = detect_mp_num(source, config)
        reference_mp: int | None = mp_num
    else:
        if mp_num < 1:
            raise ConfigError(f"mp_num must be at least 1, got {mp_num}")
        reason = "given explicitly (--mp-num)"
        try:
            reference_mp = detect_mp_num(source, config)[0]
        except ConfigError:
            reference_mp = None  # custom modelling code that is not in the folder: the true count is unknown
    say(f"converting CodeGen {source} -> GPT-J {target} (qkv_proj in {mp_num} blocks: {reason})")
    with SourceWeights(source) as weights, _atomic_folder(target) as tmp:
        carried = _carry_files(source, tmp)
        plan, dropped, untied = _plan(weights, config, mp_num)
        outputs = _write_weights(tmp, plan, max_shard_bytes)
        (tmp / "config.json").write_text(json.dumps(gptj_config(config), indent=2) + "\n", encoding="utf-8")
        found, missing = _sentinels(tmp)
        check = None
        if self_check:
            from malot.llm.convert.codegen_check import check_logits

            check = check_logits(
                weights,
                config,
                tmp,
                mp_num,
                reference_mp_num=reference_mp,
                layers=check_layers,
                tokens=check_tokens,
            )
            say(
                f"self-check passed: max |logit difference| {check['max_abs_diff']:.3g} on {check['tokens']} random "
                f"tokens through {check['layers']} layer(s) (tolerance {check['tolerance']:.3g})"
            )
        manifest = ConversionManifest(
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            source=str(source),
            source_model_type=str(config.get("model_type")),
            source_architectures=list(config.get("architectures") or []),
            source_files=[_file_record(f, hash_files=hash_files) for f in weights.files]
            + [_file_record(source / "config.json", hash_files=hash_files)],
            mp_num=mp_num,
            mp_num_reason=reason,
            tensors_in=len(weights.names()),
            tensors_out=len(plan),
            dropped_tensors=dropped,
            untied_embeddings=untied,
            carried_files=carried,
            infill_sentinels=found,
            missing_sentinels=missing,
            output_files=[_file_record(tmp / name, hash_files=hash_files) for name in outputs],
            self_check=check,
            seconds=round(time.perf_counter() - started, 3),
        )
        (tmp / MANIFEST_NAME).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if missing:
        say(f"note: the tokenizer lacks the CodeGen2 infill sentinels {', '.join(missing)}; infilling is unavailable")
    return manifest
