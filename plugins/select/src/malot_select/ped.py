"""PED (Li et al., ICCV 2023, "Exploring Model Transferability through the Lens of Potential Energy").

Fine-tuning moves a pre-trained model's features; PED simulates that movement before scoring. Target features are
standardised; each class is a ball around its centre ``cₖ`` with radius ``rₖ = n_σ · sqrt(Σ_d Var_k[d])``. Two balls
that overlap by ``o = rᵢ + rⱼ - ‖cᵢ - cⱼ‖ > 0`` store the potential energy ``½ o²`` and repel with force ``o``
(a unit spring); in one step of length ``dt`` the pair separates by ``min(½ o dt², o)`` along the line between the
centres (each class moves half of it, summed over all pairs it overlaps), so a pair never passes the touching point.
After ``steps`` steps (or as soon as nothing overlaps) the moved features are scored by a base score (LogME, SFDA or
NLEEP, :mod:`malot_select.core.scores`). With no overlap the features do not move and PED equals the base score.

The dynamics and the scoring formulas are the paper's (our reading: the whole class moves rigidly with its centre);
linear algebra is NumPy's, NLEEP's PCA and mixture scikit-learn's. The ``ped_score`` tool also extracts features of
Hugging Face checkpoints (mean-pooled last hidden states over a labelled text set, for example theorems labelled
solved/unsolved) so it can rank candidate prover checkpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_select.core.arrays import load_labels, load_matrix
from malot_select.core.scores import base_score

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "PedInput",
    "PedModelScore",
    "PedOutput",
    "PedResult",
    "causal_lm_features",
    "class_overlaps",
    "ped_dynamics",
    "ped_score",
    "ped_score_tool",
]

_PAPER = "Li et al. 2023, Exploring Model Transferability through the Lens of Potential Energy (ICCV)"


def class_overlaps(
    features: NDArray[np.float64], labels: NDArray[np.int64], n_sigma: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Class centres and the matrix of pairwise ball overlaps ``max(0, rᵢ + rⱼ - ‖cᵢ - cⱼ‖)`` (zero diagonal)."""
    import numpy as np

    classes = int(labels.max()) + 1
    centres = np.stack([features[labels == k].mean(axis=0) for k in range(classes)])
    radii = np.array([n_sigma * np.sqrt(features[labels == k].var(axis=0).sum()) for k in range(classes)])
    dist = np.linalg.norm(centres[:, None, :] - centres[None, :, :], axis=-1)
    overlap = np.maximum(0.0, radii[:, None] + radii[None, :] - dist)
    np.fill_diagonal(overlap, 0.0)
    return centres, overlap


@dataclass
class PedResult:
    """Moved features and the potential energy ``½ Σ_{i<j} oᵢⱼ²`` before each step and at the end."""

    features: NDArray[np.float64]
    energies: list[float] = field(default_factory=list)
    steps: int = 0


def ped_dynamics(
    features: NDArray[np.float64],
    labels: NDArray[np.int64],
    *,
    n_sigma: float = 1.0,
    dt: float = 1.0,
    steps: int = 10,
    standardize: bool = True,
) -> PedResult:
    """Run PED's class-ball repulsion on (standardised) features; see the module docstring."""
    import numpy as np

    x = np.array(features, dtype=np.float64, copy=True)
    if standardize:
        x -= x.mean(axis=0)
        std = x.std(axis=0)
        x /= np.where(std > 0, std, 1.0)
    result = PedResult(features=x)
    for step in range(steps + 1):
        centres, overlap = class_overlaps(x, labels, n_sigma)
        result.energies.append(float(0.5 * np.sum(np.triu(overlap, 1) ** 2)))
        if step == steps or not np.any(overlap > 0):
            break
        moves = np.zeros_like(centres)
        for i, j in zip(*np.nonzero(np.triu(overlap, 1)), strict=True):
            o = overlap[i, j]
            direction = centres[i] - centres[j]
            norm = float(np.linalg.norm(direction))
            if norm == 0:  # coincident centres: separate along the first axis, deterministic
                direction = np.zeros_like(direction)
                direction[0] = 1.0
                norm = 1.0
            shift = 0.5 * min(0.5 * o * dt * dt, o) * direction / norm
            moves[i] += shift
            moves[j] -= shift
        x += moves[labels]
        result.steps = step + 1
    result.features = x
    return result


def ped_score(
    features: NDArray[np.float64],
    labels: NDArray[np.int64],
    *,
    base: str = "logme",
    n_sigma: float = 1.0,
    dt: float = 1.0,
    steps: int = 10,
    standardize: bool = True,
    seed: int = 0,
) -> tuple[float, PedResult]:
    """The base score of the features after PED's dynamics, and the dynamics' trace."""
    moved = ped_dynamics(features, labels, n_sigma=n_sigma, dt=dt, steps=steps, standardize=standardize)
    return base_score(base, moved.features, labels, seed=seed), moved


def causal_lm_features(model_dir: str, texts: list[str], *, max_length: int = 128, batch_size: int = 8) -> Any:
    """Mean-pooled last-layer hidden states of a Hugging Face model over ``texts`` (an ``n x hidden`` array)."""
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ToolError("ped_score on checkpoints needs transformers", hint="pip install 'malot-select[hf]'") from exc
    if not Path(model_dir).is_dir():
        raise ToolError(f"model folder {model_dir} does not exist", hint="pass a Hugging Face model folder")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model = AutoModel.from_pretrained(model_dir).eval()
    rows = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=max_length,
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            rows.append((hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0))
    return torch.cat(rows).double().numpy()


def _read_text_set(path: str, text_key: str, label_key: str) -> tuple[list[str], list[int]]:
    file = Path(path)
    if not file.is_file():
        raise ToolError(f"text set {file} does not exist", hint="a .jsonl file with one labelled text per line")
    texts: list[str] = []
    labels: list[int] = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            texts.append(str(record[text_key]))
            labels.append(int(record[label_key]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ToolError(
                f"{file}:{number}: needs a {text_key!r} string and an integer {label_key!r}",
                hint="set text_key/label_key to the file's field names",
            ) from exc
    return texts, labels


class PedInput(BaseModel):
    """Arguments of ``ped_score``: candidate models as feature matrices or checkpoints, and target labels."""

    features: list[Any] | None = Field(
        None, description="one feature matrix per candidate (path to .npy/.npz/.csv or nested lists, n x D)"
    )
    labels: Any = Field(None, description="target class labels (list or file), one per row; not needed with texts")
    models: list[str] | None = Field(None, description="Hugging Face model folders to embed 'texts' with instead")
    texts: str | None = Field(None, description=".jsonl labelled text set (e.g. theorems labelled solved 1/0)")
    text_key: str = "text"
    label_key: str = "label"
    names: list[str] | None = Field(None, description="names of the candidates (default: model paths or model_i)")
    base: Literal["logme", "sfda", "nleep"] = "logme"
    n_sigma: float = Field(1.0, gt=0, description="ball radius in class standard deviations")
    dt: float = Field(1.0, gt=0, description="time step of the repulsion dynamics")
    steps: int = Field(10, ge=0, le=1000)
    max_length: int = Field(128, ge=2)
    seed: int = 0


class PedModelScore(BaseModel):
    """One candidate's scores."""

    name: str
    ped: float
    base: float
    energy_before: float
    energy_after: float
    steps: int


class PedOutput(BaseModel):
    """Scores of every candidate and the ranking by PED (best first)."""

    base: str
    scores: list[PedModelScore]
    ranking: list[str]


@tool(
    name="ped_score",
    family="select",
    paper=_PAPER,
    tags=("transferability", "model-selection", "checkpoint-ranking", "logme", "sfda", "nleep", "needs:features"),
    heavy=True,
)
def ped_score_tool(args: PedInput) -> PedOutput:
    """Rank candidate models for a labelled target task by PED (feature dynamics, then LogME/SFDA/NLEEP).

    Give each candidate's target features, or Hugging Face checkpoints plus a labelled .jsonl text set (for
    instance theorem statements labelled 1 if a prover solved them); higher scores predict better fine-tuning.
    """
    matrices: list[Any] = []
    if args.models:
        if args.texts is None:
            raise ToolError("models need a labelled text set", hint="pass texts=FILE.jsonl")
        texts, raw_labels = _read_text_set(args.texts, args.text_key, args.label_key)
        matrices = [causal_lm_features(m, texts, max_length=args.max_length) for m in args.models]
        names = args.names or list(args.models)
        labels = load_labels(raw_labels, "labels", rows=len(texts))
    elif args.features:
        names = args.names or [f"model_{i}" for i in range(len(args.features))]
        if args.labels is None:
            raise ToolError("features need labels", hint="pass labels: one class label per feature row")
        first = load_matrix(args.features[0], "features[0]", min_rows=2)
        labels = load_labels(args.labels, "labels", rows=first.shape[0])
        matrices = [first] + [
            load_matrix(f, f"features[{i}]", rows=first.shape[0]) for i, f in enumerate(args.features[1:], 1)
        ]
    else:
        raise ToolError("ped_score needs candidates", hint="pass features (one matrix per model) or models + texts")
    if len(names) != len(matrices):
        raise ToolError(f"got {len(names)} names for {len(matrices)} candidates", hint="one name per candidate")
    scores = []
    for name, matrix in zip(names, matrices, strict=True):
        value, trace = ped_score(
            matrix, labels, base=args.base, n_sigma=args.n_sigma, dt=args.dt, steps=args.steps, seed=args.seed
        )
        plain, _ = ped_score(matrix, labels, base=args.base, steps=0, seed=args.seed)  # same standardisation
        scores.append(
            PedModelScore(
                name=name,
                ped=value,
                base=plain,
                energy_before=trace.energies[0],
                energy_after=trace.energies[-1],
                steps=trace.steps,
            )
        )
    ranking = [s.name for s in sorted(scores, key=lambda s: s.ped, reverse=True)]
    return PedOutput(base=args.base, scores=scores, ranking=ranking)
