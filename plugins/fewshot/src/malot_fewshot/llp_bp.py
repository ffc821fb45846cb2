"""Learning from label proportions by belief propagation and embedding refinement (Havaldar et al., ICLR 2024).

Only the fraction ``π_b`` of positive labels in each bag is known. Step 1 (pseudo-labelling) defines a Gibbs
distribution over the binary labels ``y``:

    P(y) ∝ Π_i exp(u_i y_i) · Π_{(i,j) ∈ kNN} exp(β w_ij [y_i = y_j]) · Π_b φ_b(Σ_{i∈b} y_i)

with ``φ_b`` the bag-count factor: hard (``φ_b(c) = [c = k_b]``, ``k_b = round(π_b n_b)``) or soft
(``exp(−γ (c − π_b n_b)²)``). Loopy belief propagation marginalises it; the count factor's messages are computed
exactly by a forward-backward dynamic programme over the count (``O(n_b²)`` per bag, not ``2^{n_b}``). Step 2
(embedding refinement) fits an MLP to the soft pseudo-labels plus a bag-proportion loss; its hidden layer becomes the
covariates of the next round's kNN graph. The final MLP is the classifier. Exact property: without edges and unary
terms the marginals are ``k_b / n_b`` (the bag proportion) and ``π_b = 1`` makes every marginal 1. The paper's part:
the Gibbs model, BP and the two-step loop; the libraries': scikit-learn's kNN search and a torch MLP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_fewshot.core.arrays import as_labels, as_matrix, as_vector
from malot_fewshot.core.graph import knn_indices

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["LlpBpInput", "LlpBpOutput", "LlpResult", "bp_marginals", "count_messages", "llp_bp", "llp_bp_tool"]

_PAPER = (
    "Learning from Label Proportions: Bootstrapping Supervised Learners via Belief Propagation"
    " (Havaldar et al., ICLR 2024)"
)
_CLIP = 50.0


def _count_potential(n: int, proportion: float, strength: float | None) -> NDArray[np.float64]:
    import numpy as np

    counts = np.arange(n + 1, dtype=np.float64)
    if strength is None:
        target = round(proportion * n)
        return np.asarray(counts == target, dtype=np.float64)
    return np.asarray(np.exp(-strength * (counts - proportion * n) ** 2), dtype=np.float64)


def count_messages(p: NDArray[np.float64], potential: NDArray[np.float64]) -> NDArray[np.float64]:
    """Messages ``m_i(y_i)`` (shape ``(n, 2)``) from a count factor ``φ(Σ y)`` to each of its ``n`` variables.

    ``p[j]`` is the probability of ``y_j = 1`` in the message variable ``j`` sends to the factor. Exact:
    ``m_i(s) = Σ_c φ(c + s) P(Σ_{j≠i} y_j = c)``, via prefix count distributions ``F`` and suffix expectations ``B``.
    """
    import numpy as np

    n = len(p)
    forward = np.zeros((n + 1, n + 1))
    forward[0, 0] = 1.0
    for i in range(n):  # forward[i, a] = P(Σ_{j<i} y_j = a)
        forward[i + 1] = (1 - p[i]) * forward[i]
        forward[i + 1, 1:] += p[i] * forward[i, :-1]
    backward = np.zeros((n + 2, n + 2))
    backward[n, : n + 1] = potential  # backward[j, t] = E[φ(t + Σ_{l≥j} y_l)]
    for j in range(n - 1, -1, -1):
        backward[j, : n + 1] = (1 - p[j]) * backward[j + 1, : n + 1] + p[j] * backward[j + 1, 1 : n + 2]
    out = np.zeros((n, 2))
    for i in range(n):
        out[i, 0] = forward[i] @ backward[i + 1, : n + 1]
        out[i, 1] = forward[i] @ backward[i + 1, 1 : n + 2]
    return out


def _log_odds(m: NDArray[np.float64]) -> NDArray[np.float64]:
    import numpy as np

    with np.errstate(divide="ignore"):
        value = np.log(m[:, 1]) - np.log(m[:, 0])
    return np.asarray(np.clip(np.nan_to_num(value, nan=0.0), -_CLIP, _CLIP), dtype=np.float64)


def bp_marginals(
    bags: NDArray[np.int64],
    proportions: NDArray[np.float64],
    *,
    edges: NDArray[np.int64] | None = None,
    weights: NDArray[np.float64] | None = None,
    unary: NDArray[np.float64] | None = None,
    coupling: float = 1.0,
    bag_strength: float | None = None,
    iterations: int = 50,
    damping: float = 0.5,
    tol: float = 1e-8,
) -> NDArray[np.float64]:
    """Loopy BP marginals ``P(y_i = 1)`` of the Gibbs model above (log-odds messages, damped, parallel schedule).

    ``edges`` is an ``(E, 2)`` array of undirected pairs with ``weights`` ``w_ij``; ``unary`` adds ``u_i``.
    """
    import numpy as np

    n = len(bags)
    u = np.zeros(n) if unary is None else unary
    e = np.zeros((0, 2), dtype=np.int64) if edges is None else edges
    src = np.concatenate([e[:, 0], e[:, 1]])
    dst = np.concatenate([e[:, 1], e[:, 0]])
    w = np.ones(len(e)) if weights is None else weights
    coup = coupling * np.concatenate([w, w])
    reverse = np.concatenate([np.arange(len(e)) + len(e), np.arange(len(e))])
    pair_msg = np.zeros(len(src))  # log-odds message src -> dst
    bag_msg = np.zeros(n)  # log-odds message bag factor -> i
    members = [np.flatnonzero(bags == b) for b in range(len(proportions))]
    potentials = [_count_potential(len(m), float(proportions[b]), bag_strength) for b, m in enumerate(members)]
    for _ in range(iterations):
        incoming = np.bincount(dst, weights=pair_msg, minlength=n)
        to_bag = u + incoming
        new_bag = np.zeros(n)
        for b, idx in enumerate(members):
            prob = 1.0 / (1.0 + np.exp(-to_bag[idx]))
            new_bag[idx] = _log_odds(count_messages(prob, potentials[b]))
        # pairwise: cavity at src excluding dst's message, then m = log((e^{J+h} + 1) / (e^h + e^J))
        cavity = (u + incoming + new_bag)[src] - pair_msg[reverse]
        new_pair = np.logaddexp(coup + cavity, 0.0) - np.logaddexp(cavity, coup)
        delta = max(np.abs(new_bag - bag_msg).max(initial=0.0), np.abs(new_pair - pair_msg).max(initial=0.0))
        bag_msg = damping * bag_msg + (1 - damping) * new_bag if len(e) else new_bag  # no edges: exact in one step
        pair_msg = damping * pair_msg + (1 - damping) * new_pair
        if delta < tol:
            break
    belief = u + np.bincount(dst, weights=pair_msg, minlength=n) + bag_msg
    return np.asarray(1.0 / (1.0 + np.exp(-belief)), dtype=np.float64)


def _knn_edges(x: NDArray[np.float64], k: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    import numpy as np

    idx = knn_indices(x, k)
    pairs = {(min(i, int(j)), max(i, int(j))) for i in range(len(x)) for j in idx[i]}
    edges = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    d = ((x[edges[:, 0]] - x[edges[:, 1]]) ** 2).sum(1)
    scale = float(np.median(d)) or 1.0
    return edges, np.asarray(np.exp(-d / scale), dtype=np.float64)


@dataclass
class LlpResult:
    """Pseudo-label marginals of the last round and a predictor for new instances."""

    marginals: NDArray[np.float64]
    train_scores: NDArray[np.float64]
    model: object

    def predict_proba(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """``P(y = 1 | x)`` from the final MLP."""
        import numpy as np
        import torch

        net = self.model
        assert isinstance(net, torch.nn.Module)
        with torch.no_grad():
            out = torch.sigmoid(net(torch.as_tensor(x, dtype=torch.float32))).squeeze(1)
        return np.asarray(out.numpy(), dtype=np.float64)


def llp_bp(
    x: NDArray[np.float64],
    bags: NDArray[np.int64],
    proportions: NDArray[np.float64],
    *,
    rounds: int = 2,
    knn: int = 5,
    coupling: float = 1.0,
    bag_strength: float | None = None,
    hidden: int = 32,
    steps: int = 300,
    bag_loss_weight: float = 1.0,
    seed: int = 0,
) -> LlpResult:
    """The paper's loop: BP pseudo-labels on the kNN graph → MLP (pseudo-label + bag loss) → refined embedding."""
    import numpy as np
    import torch

    from malot_fewshot.core.training import fit_full_batch, mlp, seeded

    seeded(seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    bag_t = torch.as_tensor(bags)
    prop_t = torch.as_tensor(proportions, dtype=torch.float32)
    sizes = torch.bincount(bag_t, minlength=len(proportions)).float()
    covariates = (x - x.mean(0)) / (x.std(0) + 1e-12)
    marginals = np.full(len(x), 0.5)
    net = mlp(x.shape[1], hidden, 1)
    for _ in range(rounds):
        edges, weights = _knn_edges(covariates, knn)
        marginals = bp_marginals(
            bags, proportions, edges=edges, weights=weights, coupling=coupling, bag_strength=bag_strength
        )
        target = torch.as_tensor(marginals, dtype=torch.float32)
        net = mlp(x.shape[1], hidden, 1)

        def loss(model: torch.nn.Module = net, soft: torch.Tensor = target) -> torch.Tensor:
            logits = model(xt).squeeze(1)
            prob = torch.sigmoid(logits)
            bag_mean = torch.zeros(len(sizes)).index_add(0, bag_t, prob) / sizes
            bag_term = torch.nn.functional.binary_cross_entropy(bag_mean.clamp(1e-6, 1 - 1e-6), prop_t)
            pseudo = torch.nn.functional.binary_cross_entropy_with_logits(logits, soft)
            return pseudo + bag_loss_weight * bag_term

        fit_full_batch(list(net.parameters()), loss, steps=steps, lr=1e-2)
        with torch.no_grad():
            covariates = net[:2](xt).numpy().astype(np.float64)
        covariates = covariates + 1e-6 * np.random.default_rng(seed).normal(size=covariates.shape)
    result = LlpResult(marginals=marginals, train_scores=np.zeros(len(x)), model=net)
    result.train_scores = result.predict_proba(x)
    return result


class LlpBpInput(BaseModel):
    """Arguments of the ``llp_bp`` tool."""

    x: list[list[float]] = Field(description="training features, one row per instance")
    bags: list[int] = Field(description="bag id of every training instance (0..B-1)")
    proportions: list[float] = Field(description="fraction of positive labels in each bag")
    predict: list[list[float]] | None = Field(default=None, description="instances to score with the final model")
    rounds: int = Field(default=2, ge=1, description="pseudo-label / embedding-refinement rounds")
    knn: int = Field(default=5, gt=0, description="neighbours in the covariate kNN graph")
    coupling: float = Field(default=1.0, ge=0, description="β: strength of the similar-labels edge factors")
    bag_strength: float | None = Field(default=None, gt=0, description="γ of a soft count factor (None: hard)")
    steps: int = Field(default=300, gt=0, description="MLP training steps per round")
    seed: int = 0


class LlpBpOutput(BaseModel):
    """Result of the ``llp_bp`` tool."""

    pseudo_labels: list[float]
    train_scores: list[float]
    predictions: list[float] | None


@tool(
    name="llp_bp",
    family="fewshot",
    paper=_PAPER,
    tags=("weak supervision", "label proportions", "bags", "belief propagation", "needs:features+bag proportions"),
    heavy=True,
)
def llp_bp_tool(args: LlpBpInput) -> LlpBpOutput:
    """Learn a binary classifier from bag label proportions: BP pseudo-labels + MLP embedding refinement.

    Returns the BP marginals (pseudo-labels) of the training instances, the final MLP's scores on them, and its
    scores on ``predict`` when given.
    """
    import numpy as np

    x = as_matrix(args.x, "x", min_rows=2)
    bags = as_labels(args.bags, "bags", length=len(x))
    props = as_vector(args.proportions, "proportions", length=int(bags.max()) + 1)
    if ((props < 0) | (props > 1)).any():
        raise ToolError("proportions must lie in [0, 1]", hint="give the fraction of positives in each bag")
    if (np.bincount(bags) == 0).any():
        raise ToolError("bag ids must be 0..B-1 with every bag non-empty", hint="renumber the bags consecutively")
    if args.knn >= len(x):
        raise ToolError(f"knn={args.knn} needs more than {args.knn} instances", hint="lower knn")
    predict = as_matrix(args.predict, "predict", cols=x.shape[1]) if args.predict is not None else None
    result = llp_bp(
        x,
        bags,
        props,
        rounds=args.rounds,
        knn=args.knn,
        coupling=args.coupling,
        bag_strength=args.bag_strength,
        steps=args.steps,
        seed=args.seed,
    )
    return LlpBpOutput(
        pseudo_labels=result.marginals.round(6).tolist(),
        train_scores=result.train_scores.round(6).tolist(),
        predictions=result.predict_proba(predict).round(6).tolist() if predict is not None else None,
    )
