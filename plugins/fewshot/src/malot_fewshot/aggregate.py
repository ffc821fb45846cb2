"""Learning from aggregate responses: bag-level vs instance-level losses and their interpolation (Javanmard et al.).

Only bag means ``ȳ_b`` of the responses are observed. For predictions ``f_i = θᵀx_i`` and bag ``b`` of size ``k_b``:

* bag-level loss       ``L_bag  = Σ_b k_b (ȳ_b − f̄_b)²``            (``f̄_b`` the bag's mean prediction);
* instance-level loss  ``L_inst = Σ_b Σ_{i∈b} (ȳ_b − f_i)²``;
* the identity         ``L_inst = L_bag + Σ_b Σ_{i∈b} (f_i − f̄_b)²`` (instance loss = bag loss + within-bag spread),

so the instance loss is the bag loss plus a regulariser on the within-bag variance of the predictions. The paper's
interpolating estimator minimises ``L_ρ = L_bag + ρ·Σ_b Σ_{i∈b}(f_i − f̄_b)²``: ``ρ = 0`` is the (unbiased, high
variance) bag loss, ``ρ = 1`` the (biased, low variance) instance loss. For the linear model the minimiser has the
closed form ``θ = (X̄ᵀKX̄ + ρS + νI)⁻¹ X̄ᵀKȳ`` with ``S`` the pooled within-bag scatter of the features and a tiny
ridge ``ν``. Label differential privacy: each response is clipped to ``[lo, hi]`` and the Laplace mechanism adds
``Lap((hi − lo)/(k_b ε))`` to each bag mean (one response changes one bag mean by at most ``(hi − lo)/k_b``), which is
ε-label-DP by parallel composition over the disjoint bags. Paper: "Learning from Aggregate responses: Instance Level
versus Bag Level Loss Functions" (Javanmard, Chen, Mirrokni, Badanidiyuru, Fu; ICLR 2024). All of it is the paper's
(numpy linear algebra); the paper's theory is for this linear model, which is what the tool fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, model_validator

from malot.errors import ToolError
from malot.tools import tool
from malot_fewshot.core.arrays import as_labels, as_matrix, as_vector

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "AggregateInput",
    "AggregateLosses",
    "AggregateOutput",
    "aggregate_losses",
    "bag_means",
    "fit_aggregate",
    "fit_interpolated",
    "private_bag_means",
]

_PAPER = (
    "Learning from Aggregate Responses: Instance Level versus Bag Level Loss Functions (Javanmard et al., ICLR 2024)"
)


def bag_means(values: NDArray[np.float64], bags: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-bag means of ``values`` (rows or scalars) and the bag sizes; bags are numbered 0..B-1, none empty."""
    import numpy as np

    sizes = np.bincount(bags).astype(np.float64)
    if (sizes == 0).any():
        raise ToolError("bag ids must be 0..B-1 with every bag non-empty", hint="renumber the bags consecutively")
    sums = np.zeros((len(sizes), *values.shape[1:]))
    np.add.at(sums, bags, values)
    means: NDArray[np.float64] = sums / sizes.reshape(-1, *([1] * (values.ndim - 1)))
    return means, sizes


@dataclass(frozen=True)
class AggregateLosses:
    """The bag loss, the within-bag prediction spread, and the instance loss (``= bag + spread``), all summed."""

    bag: float
    spread: float
    instance: float

    def interpolated(self, rho: float) -> float:
        """``L_bag + ρ·spread``."""
        return self.bag + rho * self.spread


def aggregate_losses(
    theta: NDArray[np.float64], x: NDArray[np.float64], bags: NDArray[np.int64], ybar: NDArray[np.float64]
) -> AggregateLosses:
    """Evaluate the three losses of the module docstring for the linear predictor ``θ`` (the instance loss directly)."""
    f = x @ theta
    fbar, sizes = bag_means(f, bags)
    bag = float((sizes * (ybar - fbar) ** 2).sum())
    spread = float(((f - fbar[bags]) ** 2).sum())
    instance = float(((ybar[bags] - f) ** 2).sum())
    return AggregateLosses(bag=bag, spread=spread, instance=instance)


def fit_interpolated(
    x: NDArray[np.float64], bags: NDArray[np.int64], ybar: NDArray[np.float64], rho: float, ridge: float = 1e-8
) -> NDArray[np.float64]:
    """Closed-form minimiser of ``L_bag + ρ·spread + ν‖θ‖²`` for the linear model ``f = Xθ``."""
    import numpy as np

    xbar, sizes = bag_means(x, bags)
    centred = x - xbar[bags]
    scatter = centred.T @ centred
    gram = xbar.T @ (sizes[:, None] * xbar) + rho * scatter + ridge * len(x) * np.eye(x.shape[1])
    theta: NDArray[np.float64] = np.asarray(np.linalg.solve(gram, xbar.T @ (sizes * ybar)), dtype=np.float64)
    return theta


def private_bag_means(
    y: NDArray[np.float64],
    bags: NDArray[np.int64],
    *,
    epsilon: float | None,
    bounds: tuple[float, float],
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Bag means of the responses clipped to ``bounds``, plus Laplace noise for ε-label-DP (no noise for ``None``)."""
    lo, hi = bounds
    if not hi > lo:
        raise ToolError(f"response bounds must satisfy lo < hi, got {bounds}")
    means, sizes = bag_means(y.clip(lo, hi), bags)
    if epsilon is None:
        return means
    if epsilon <= 0:
        raise ToolError(f"epsilon must be positive, got {epsilon}", hint="omit epsilon for no privacy noise")
    noisy: NDArray[np.float64] = means + rng.laplace(scale=(hi - lo) / (sizes * epsilon))
    return noisy


class AggregateInput(BaseModel):
    """Arguments of the ``fit_aggregate`` tool: features, bag ids, and either bag means or raw responses."""

    x: list[list[float]] = Field(description="features, one row per instance")
    bags: list[int] = Field(description="bag id of every instance (0..B-1)")
    bag_responses: list[float] | None = Field(default=None, description="observed mean response of each bag")
    responses: list[float] | None = Field(
        default=None, description="raw instance responses, aggregated (and privatised) by the tool instead"
    )
    rho: float = Field(default=0.5, ge=0, le=1, description="0: bag loss, 1: instance loss, between: interpolation")
    epsilon: float | None = Field(default=None, gt=0, description="label-DP budget for the bag means (raw responses)")
    response_bounds: tuple[float, float] | None = Field(default=None, description="clip range [lo, hi] for DP")
    ridge: float = Field(default=1e-8, ge=0)
    fit_intercept: bool = True
    seed: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> AggregateInput:
        if (self.bag_responses is None) == (self.responses is None):
            raise ValueError("give exactly one of bag_responses or responses")
        if self.epsilon is not None and (self.responses is None or self.response_bounds is None):
            raise ValueError("epsilon needs raw responses and response_bounds")
        return self


class AggregateOutput(BaseModel):
    """Result of the ``fit_aggregate`` tool."""

    coef: list[float]
    intercept: float
    bag_loss: float
    instance_loss: float
    interpolated_loss: float
    n_bags: int


@tool(
    name="fit_aggregate",
    family="fewshot",
    paper=_PAPER,
    tags=("weak supervision", "aggregate labels", "bags", "differential privacy", "needs:features+bag means"),
)
def fit_aggregate(args: AggregateInput) -> AggregateOutput:
    """Fit a linear model from bag-level mean responses by the bag/instance interpolating loss (ρ), optionally DP.

    ``rho=0`` minimises the bag-level loss, ``rho=1`` the instance-level loss; ``epsilon`` adds Laplace noise to the
    bag means computed from clipped raw responses (ε-label-DP).
    """
    import numpy as np

    x = as_matrix(args.x, "x")
    bags = as_labels(args.bags, "bags", length=len(x))
    n_bags = int(bags.max()) + 1
    if args.bag_responses is not None:
        ybar = as_vector(args.bag_responses, "bag_responses", length=n_bags)
        bag_means(ybar[bags], bags)  # checks that every bag id is used
    else:
        y = as_vector(args.responses, "responses", length=len(x))
        bounds = args.response_bounds or (float(y.min()), float(y.max()) + 1e-12)
        ybar = private_bag_means(y, bags, epsilon=args.epsilon, bounds=bounds, rng=np.random.default_rng(args.seed))
    design = np.hstack([x, np.ones((len(x), 1))]) if args.fit_intercept else x
    theta = fit_interpolated(design, bags, ybar, args.rho, args.ridge)
    losses = aggregate_losses(theta, design, bags, ybar)
    n = float(len(x))
    return AggregateOutput(
        coef=theta[: x.shape[1]].tolist(),
        intercept=float(theta[-1]) if args.fit_intercept else 0.0,
        bag_loss=losses.bag / n,
        instance_loss=losses.instance / n,
        interpolated_loss=losses.interpolated(args.rho) / n,
        n_bags=n_bags,
    )
