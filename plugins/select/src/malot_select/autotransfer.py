"""AutoTransfer (Cao et al., ICLR 2023, "AutoTransfer: AutoML with Knowledge Transfer — An Application to Graph
Neural Networks"): a design prior for a new task from a bank of (task, design, performance) records.

**Task embedding** (the paper's Sec. 4.1): a fixed set of *anchor models* (here small MLPs with fixed seeds and
widths, for tabular/feature tasks) is trained briefly on the task; for each anchor the diagonal Fisher information of
the cross-entropy loss, ``F = E[(∂ log p(y|x) / ∂θ)²]``, is summarised per layer (mean over the layer's weights),
and each anchor's vector is normalised to unit length; the concatenation is the task's feature. As in the paper, a
projection of these features is learned from the bank with a triplet loss, so that tasks whose designs rank alike
(Kendall τ of their performances) lie close (:func:`learn_task_projection`; linear here, started at the identity).
Inputs are standardised and mapped to the anchors' fixed width by a seeded Gaussian random projection, so tasks of
any input dimension share one embedding space.

**Design prior** (Sec. 4.2): the ``K`` bank tasks most similar (cosine) to the new task vote for designs; each
bank task's performances are min-max normalised, weighted by ``softmax(similarity / τ)`` over the ``K`` and summed.
A task identical to a bank task (same data, same anchors) has similarity 1, and with ``K = 1`` its designs come back
in its own order. The embedding and prior are the paper's; the anchors' training uses PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_select.core.arrays import load_labels, load_matrix

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "ANCHORS",
    "BankTask",
    "DesignPriorInput",
    "DesignPriorOutput",
    "design_prior",
    "design_prior_tool",
    "fisher_task_embedding",
    "learn_task_projection",
]

_PAPER = "Cao et al. 2023, AutoTransfer: AutoML with Knowledge Transfer (ICLR)"

#: Anchor models: (hidden width, depth, seed). Fixed, so embeddings of different tasks are comparable.
ANCHORS: tuple[tuple[int, int, int], ...] = ((16, 1, 0), (32, 2, 1), (16, 2, 2))
_IN_DIM = 16


def _project(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Standardise and map to the anchors' input width with a seeded Gaussian projection (fixed per input dim)."""
    import numpy as np

    std = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    proj = np.random.default_rng(1000 + x.shape[1]).standard_normal((x.shape[1], _IN_DIM)) / np.sqrt(x.shape[1])
    return np.asarray(z @ proj, dtype=np.float64)


def fisher_task_embedding(
    features: NDArray[np.float64], labels: NDArray[np.int64], *, steps: int = 50, classes: int | None = None
) -> NDArray[np.float64]:
    """AutoTransfer's task feature: per-layer mean diagonal Fisher of briefly trained anchor MLPs, normalised per
    anchor, concatenated."""
    import numpy as np
    import torch
    from torch import nn
    from torch.func import functional_call, grad, vmap

    n_classes = max(int(labels.max()) + 1, classes or 0)
    x = torch.tensor(_project(features), dtype=torch.float32)
    y = torch.tensor(labels, dtype=torch.long)
    parts = []
    for width, depth, seed in ANCHORS:
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        d_in = _IN_DIM
        for _ in range(depth):
            layers += [nn.Linear(d_in, width), nn.Tanh()]
            d_in = width
        layers.append(nn.Linear(d_in, max(n_classes, 2)))
        net = nn.Sequential(*layers)
        torch.random.set_rng_state(generator_state)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(steps):
            loss = nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
        params = {name: p.detach() for name, p in net.named_parameters()}

        def sample_loss(
            p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor, model: nn.Module = net
        ) -> torch.Tensor:
            logits = functional_call(model, p, (xi.unsqueeze(0),))
            return nn.functional.cross_entropy(logits, yi.unsqueeze(0))

        grads = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, x, y)  # per-sample gradients
        vec = np.array([float((grads[name] ** 2).mean()) for name in params])
        parts.append(vec / (np.linalg.norm(vec) or 1.0))
    return np.concatenate(parts)


def learn_task_projection(
    features: Sequence[NDArray[np.float64]],
    performances: Sequence[dict[str, float]],
    *,
    steps: int = 200,
    margin: float = 0.1,
    seed: int = 0,
) -> NDArray[np.float64]:
    """AutoTransfer's learned task embedding: a linear map ``W`` (started at the identity) trained with a triplet loss
    so that, for every anchor task ``a`` and pair ``(i, j)`` with ``τ(pₐ, pᵢ) > τ(pₐ, pⱼ)`` (Kendall τ of their design
    performances), ``cos(Wfₐ, Wfᵢ)`` exceeds ``cos(Wfₐ, Wfⱼ)`` by ``margin``. Returns ``W``.
    """
    import itertools

    import numpy as np
    import torch
    from scipy.stats import kendalltau

    designs = sorted(set.intersection(*(set(p) for p in performances)))
    if len(features) < 3 or len(designs) < 2:
        return np.eye(features[0].shape[0])
    perf = [np.array([p[d] for d in designs]) for p in performances]
    n = len(features)
    tau = np.ones((n, n))
    for i, j in itertools.combinations(range(n), 2):
        value = kendalltau(perf[i], perf[j]).statistic
        tau[i, j] = tau[j, i] = 0.0 if np.isnan(value) else float(value)
    triplets = [
        (a, i, j) for a in range(n) for i in range(n) for j in range(n) if len({a, i, j}) == 3 and tau[a, i] > tau[a, j]
    ]
    if not triplets:
        return np.eye(features[0].shape[0])
    f = torch.tensor(np.stack(features), dtype=torch.float64)
    torch.manual_seed(seed)
    w = torch.eye(f.shape[1], dtype=torch.float64, requires_grad=True)
    idx = torch.tensor(triplets)
    opt = torch.optim.Adam([w], lr=1e-2)
    for _ in range(steps):
        z = torch.nn.functional.normalize(f @ w.T, dim=1)
        sim = z @ z.T
        loss = torch.relu(margin - sim[idx[:, 0], idx[:, 1]] + sim[idx[:, 0], idx[:, 2]]).mean()
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    return np.asarray(w.detach().numpy(), dtype=np.float64)


class BankTask(BaseModel):
    """One bank record: a task (its embedding, or its data to embed) and the measured performance of designs."""

    name: str
    designs: dict[str, float] = Field(min_length=1, description="design name -> performance (higher is better)")
    embedding: list[float] | None = Field(None, description="task embedding (from an earlier design_prior run)")
    features: Any = Field(None, description="n x d task features (path or lists), embedded when no embedding given")
    labels: Any = Field(None, description="task class labels")


def design_prior(
    query: NDArray[np.float64],
    bank: Sequence[tuple[str, NDArray[np.float64], dict[str, float]]],
    *,
    k: int = 3,
    temperature: float = 0.1,
) -> tuple[dict[str, float], list[tuple[str, float]]]:
    """Prior score of every design (higher: try first) and the ``k`` most similar bank tasks with similarities."""
    import numpy as np

    sims = []
    for name, emb, _ in bank:
        if emb.shape != query.shape:
            raise ToolError(f"bank task {name!r} has a {emb.shape[0]}-d embedding, the query {query.shape[0]}-d")
        denom = float(np.linalg.norm(emb) * np.linalg.norm(query)) or 1.0
        sims.append(float(emb @ query) / denom)
    order = sorted(range(len(bank)), key=lambda i: -sims[i])[: max(1, k)]
    weights = np.exp(np.array([sims[i] for i in order]) / temperature)
    weights /= weights.sum()
    prior: dict[str, float] = {}
    for w, i in zip(weights, order, strict=True):
        perf = bank[i][2]
        lo, hi = min(perf.values()), max(perf.values())
        for design, value in perf.items():
            prior[design] = prior.get(design, 0.0) + float(w) * ((value - lo) / (hi - lo) if hi > lo else 1.0)
    return prior, [(bank[i][0], sims[i]) for i in order]


class DesignPriorInput(BaseModel):
    """Arguments of ``design_prior``: the new task's data and the bank."""

    features: Any = Field(description="n x d features of the new task (path or nested lists)")
    labels: Any = Field(description="class labels of the new task")
    bank: list[BankTask] = Field(min_length=1)
    k: int = Field(3, ge=1, description="how many similar bank tasks vote")
    temperature: float = Field(0.1, gt=0)
    steps: int = Field(50, ge=0, le=5000, description="training steps of each anchor model")
    learn_projection: bool = Field(
        True, description="learn the triplet-loss projection of task features from the bank (needs >= 3 tasks)"
    )


class DesignPriorOutput(BaseModel):
    """Designs ranked by the prior, their prior scores, the nearest bank tasks, and the task's embedding."""

    ranking: list[str]
    scores: dict[str, float]
    neighbours: list[tuple[str, float]]
    embedding: list[float]


@tool(
    name="design_prior",
    family="select",
    paper=_PAPER,
    tags=("transfer", "automl", "design-search", "task-embedding", "fisher", "needs:bank"),
    heavy=True,
)
def design_prior_tool(args: DesignPriorInput) -> DesignPriorOutput:
    """Rank model designs for a new task (AutoTransfer): embed the task by the Fisher information of anchor models,
    find the most similar tasks in a bank of (task, design, performance) records, and aggregate their results."""
    x = load_matrix(args.features, "features", min_rows=2)
    y = load_labels(args.labels, "labels", rows=x.shape[0])
    query = fisher_task_embedding(x, y, steps=args.steps)
    bank = []
    for task in args.bank:
        if task.embedding is not None:
            import numpy as np

            emb = np.asarray(task.embedding, dtype=np.float64)
        elif task.features is not None and task.labels is not None:
            bx = load_matrix(task.features, f"{task.name}.features", min_rows=2)
            emb = fisher_task_embedding(
                bx, load_labels(task.labels, f"{task.name}.labels", rows=bx.shape[0]), steps=args.steps
            )
        else:
            raise ToolError(f"bank task {task.name!r} has neither an embedding nor data", hint="give one of them")
        bank.append((task.name, emb, task.designs))
    if args.learn_projection:
        import numpy as np

        if len({emb.shape for _, emb, _ in bank} | {query.shape}) != 1:
            raise ToolError(
                "bank embeddings and the task's embedding differ in size", hint="embed all with design_prior"
            )
        w = learn_task_projection([emb for _, emb, _ in bank], [d for _, _, d in bank])
        bank = [(name, w @ emb, designs) for name, emb, designs in bank]
        query = np.asarray(w @ query, dtype=np.float64)
    scores, neighbours = design_prior(query, bank, k=args.k, temperature=args.temperature)
    return DesignPriorOutput(
        ranking=sorted(scores, key=lambda d: -scores[d]),
        scores=scores,
        neighbours=neighbours,
        embedding=[float(v) for v in query],
    )
