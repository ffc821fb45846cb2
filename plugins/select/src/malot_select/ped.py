"""PED (Li et al., ICCV 2023, "Exploring Model Transferability through the Lens of Potential Energy").

Fine-tuning moves a pre-trained model's features; PED simulates that movement before scoring. Features are
standardised (by the model's features of its pre-training data when given, the paper's rescaling, else by the target
features); each class is a ball around its centre ``cₖ`` with radius ``rₖ = n_σ · sqrt(Σ_d Var_k[d])``. Two balls
that overlap by ``o = rᵢ + rⱼ - ‖cᵢ - cⱼ‖ > 0`` hold the potential energy ``½ o²`` and repel with force ``o``; in one
step of length ``dt`` each of the two classes moves ``min(½ o dt², o)`` away from the other along the line between
the centres (summed over every class it overlaps). The simulation runs at most ``steps`` steps and stops early when
nothing overlaps or when a step would move the classes less than ``exit_ratio`` times the first step did. The
displacement is mapped back to the original scale and the moved features are scored by a base score (LogME, SFDA or
NLEEP, :mod:`malot_select.core.scores`). With no overlap nothing moves and PED equals the base score exactly.
Defaults (``n_σ = 0.6``, ``dt = 0.1``, at most 6 steps, exit ratio 0.5) are those of the authors' released code.

The dynamics and the scoring formulas are the paper's (each class moves rigidly with its centre, as in the authors'
code);
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
    """Moved features (original scale), the potential energy ``½ Σ_{i<j} oᵢⱼ²`` before each step and after the
    last, the total displacement of every step, and how many steps moved the features."""

    features: NDArray[np.float64]
    energies: list[float] = field(default_factory=list)
    movements: list[float] = field(default_factory=list)
    steps: int = 0


def ped_dynamics(
    features: NDArray[np.float64],
    labels: NDArray[np.int64],
    *,
    n_sigma: float = 0.6,
    dt: float = 0.1,
    steps: int = 6,
    exit_ratio: float = 0.5,
    reference: NDArray[np.float64] | None = None,
) -> PedResult:
    """Run PED's class-ball repulsion; see the module docstring.

    Positions are standardised by ``reference`` (features of the model's pre-training data, the paper's rescaling)
    or, without one, by the target features themselves. Every step each class moves ``min(½ o dt², o)`` away from
    every class it overlaps by ``o``; the simulation stops after ``steps`` steps, when nothing overlaps, or when a
    step moves less than ``exit_ratio`` times the first step did (that step is not applied). The displacement is
    mapped back to the original scale, so features that never move are returned unchanged.
    """
    import numpy as np

    x = np.asarray(features, dtype=np.float64)
    basis = x if reference is None else np.asarray(reference, dtype=np.float64)
    mean, std = basis.mean(axis=0), np.maximum(basis.std(axis=0), 1e-3)
    z = (x - mean) / std
    offset = np.zeros((int(labels.max()) + 1, x.shape[1]))
    result = PedResult(features=x)
    first = 0.0
    for step in range(steps + 1):
        centres, overlap = class_overlaps(z + offset[labels], labels, n_sigma)
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
            shift = min(0.5 * o * dt * dt, o) * direction / norm
            moves[i] += shift
            moves[j] -= shift
        movement = float(np.abs(moves).sum())
        first = first or movement
        if movement <= exit_ratio * first and step > 0:
            break
        offset += moves
        result.movements.append(movement)
        result.steps = step + 1
    if result.steps:
        result.features = x + offset[labels] * std
    return result


def ped_score(
    features: NDArray[np.float64],
    labels: NDArray[np.int64],
    *,
    base: str = "logme",
    n_sigma: float = 0.6,
    dt: float = 0.1,
    steps: int = 6,
    exit_ratio: float = 0.5,
    reference: NDArray[np.float64] | None = None,
    seed: int = 0,
) -> tuple[float, PedResult]:
    """The base score of the features after PED's dynamics, and the dynamics' trace."""
    moved = ped_dynamics(
        features, labels, n_sigma=n_sigma, dt=dt, steps=steps, exit_ratio=exit_ratio, reference=reference
    )
    return base_score(base, moved.features, labels, seed=seed), moved


def causal_lm_features(model_dir: str, texts: list[str], *, max_length: int = 128, batch_size: int = 8) -> Any:
    """Mean-pooled last-layer hidden states of a Hugging Face model over ``texts`` (an ``n x hidden`` array)."""
    try:
        import torch
        from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ToolError("ped_score on checkpoints needs transformers", hint="pip install 'malot-select[hf]'") from exc
    if not Path(model_dir).is_dir():
        raise ToolError(f"model folder {model_dir} does not exist", hint="pass a Hugging Face model folder")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model: Any
    try:  # a causal LM checkpoint (a prover) loads whole, so no weights are left unused
        model = AutoModelForCausalLM.from_pretrained(model_dir)
    except ValueError:  # an encoder or other architecture without a causal-LM head
        model = AutoModel.from_pretrained(model_dir)
    model.eval()
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
            hidden = model(**batch, output_hidden_states=True).hidden_states[-1]
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
    references: list[Any] | None = Field(
        None, description="per candidate, features of its pre-training data to standardise by (the paper's rescaling)"
    )
    n_sigma: float = Field(0.6, gt=0, description="ball radius in class standard deviations (authors: 0.3 or 0.6)")
    dt: float = Field(0.1, gt=0, description="time step of the repulsion dynamics")
    steps: int = Field(6, ge=0, le=1000, description="at most this many steps")
    exit_ratio: float = Field(0.5, ge=0, le=1, description="stop when a step moves less than this x the first")
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
    references = None
    if args.references is not None:
        if len(args.references) != len(matrices):
            raise ToolError(
                f"got {len(args.references)} reference matrices for {len(matrices)} candidates",
                hint="one reference per candidate, or none",
            )
        references = [load_matrix(r, f"references[{i}]", min_rows=2) for i, r in enumerate(args.references)]
        for i, (r, m) in enumerate(zip(references, matrices, strict=True)):
            if r.shape[1] != m.shape[1]:
                raise ToolError(f"references[{i}] has {r.shape[1]} dims, its features {m.shape[1]}")
    if len(names) != len(matrices):
        raise ToolError(f"got {len(names)} names for {len(matrices)} candidates", hint="one name per candidate")
    scores: list[PedModelScore] = []
    for index, (name, matrix) in enumerate(zip(names, matrices, strict=True)):
        value, trace = ped_score(
            matrix,
            labels,
            base=args.base,
            n_sigma=args.n_sigma,
            dt=args.dt,
            steps=args.steps,
            exit_ratio=args.exit_ratio,
            reference=references[index] if references else None,
            seed=args.seed,
        )
        plain = base_score(args.base, matrix, labels, seed=args.seed)
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
