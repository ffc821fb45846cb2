"""MBTL (Cho et al., NeurIPS 2024, "Model-Based Transfer Learning for Contextual Reinforcement Learning"): choose
the next training context by Bayesian optimisation of the generalised performance.

Tasks are indexed by contexts ``x``. Training on a source context ``s`` and evaluating zero-shot on ``x`` is modelled
as ``J(s → x) = J(s) - θ‖s - x‖`` (source performance minus a generalisation gap linear in the context distance,
the paper's Eq. 5). ``J(s)`` is unknown before training, so a Gaussian process (BoTorch ``SingleTaskGP`` with its
marginal-likelihood fit, GPyTorch underneath) models it from the contexts trained so far. With ``V(x')`` the best
performance any trained model reaches on ``x'``, MBTL trains next on the untrained context maximising the expected
improvement of the whole task set under the UCB estimate ``μ(x) + β σ(x)``:

``x_next = argmax_{x ∉ trained} Σ_{x'} max(V(x'), μ(x) + β σ(x) - θ‖x - x'‖) - V(x')`` (the paper's Eq. 8-9)

Before any training the GP prior is flat, so the pick is the context with the smallest total distance to all others
(the centre of a uniform range); a trained context is never proposed again. ``V`` uses measured transfer results
where given, else the model. The acquisition and the gap model are the paper's; the GP and its fit are BoTorch's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, model_validator

from malot.errors import ToolError
from malot.tools import tool
from malot_select.core.arrays import load_matrix

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "MbtlInput",
    "MbtlOutput",
    "gp_posterior",
    "mbtl_acquisition",
    "mbtl_sequence",
    "next_training_task_tool",
]

_PAPER = "Cho et al. 2024, Model-Based Transfer Learning for Contextual Reinforcement Learning (NeurIPS)"


def gp_posterior(
    contexts: NDArray[np.float64],
    trained: Sequence[int],
    performance: Sequence[float],
    *,
    prior_mean: float,
    prior_std: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """GP posterior mean and standard deviation of the source performance ``J`` at every context.

    No observations: the flat prior. One or two: a GP with fixed unit length scale (on contexts scaled to the unit
    box) and the prior's scale. Three or more: BoTorch's ``SingleTaskGP`` fitted by marginal likelihood.
    """
    import numpy as np

    n = contexts.shape[0]
    if not trained:
        return np.full(n, prior_mean), np.full(n, prior_std)
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms import Normalize, Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    lo, hi = contexts.min(axis=0), contexts.max(axis=0)
    unit = (contexts - lo) / np.where(hi > lo, hi - lo, 1.0)
    x_all = torch.tensor(unit, dtype=torch.float64)
    x = x_all[list(trained)]
    y = torch.tensor(list(performance), dtype=torch.float64).unsqueeze(-1)
    bounds = torch.stack([torch.zeros(unit.shape[1]), torch.ones(unit.shape[1])]).double()
    if len(trained) >= 3:
        model = SingleTaskGP(
            x, y, input_transform=Normalize(unit.shape[1], bounds=bounds), outcome_transform=Standardize(1)
        )
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    else:
        from gpytorch.kernels import RBFKernel, ScaleKernel

        model = SingleTaskGP(
            x,
            y - prior_mean,
            covar_module=ScaleKernel(RBFKernel()),
            input_transform=Normalize(unit.shape[1], bounds=bounds),
        )
        _set_fixed_hypers(model, prior_std)
    model.eval()
    with torch.no_grad():
        post = model.posterior(x_all)
        mean = post.mean.squeeze(-1).numpy()
        std = post.variance.clamp_min(0).sqrt().squeeze(-1).numpy()
    if len(trained) < 3:
        mean = mean + prior_mean
    return np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)


def _set_fixed_hypers(model: Any, prior_std: float) -> None:
    """Length scale 0.25 of the unit box, output scale ``prior_std²``, tiny noise (few points, nothing to fit)."""
    covar = model.covar_module
    kernel = getattr(covar, "base_kernel", covar)
    kernel.lengthscale = 0.25
    if hasattr(covar, "outputscale"):
        covar.outputscale = prior_std**2
    model.likelihood.noise = 1e-4


def mbtl_acquisition(
    distances: NDArray[np.float64],
    ucb: NDArray[np.float64],
    best_so_far: NDArray[np.float64],
    slope: float,
) -> NDArray[np.float64]:
    """Expected total improvement of training at each context: ``Σ_x' max(V, ucb(x) - θ d(x, x')) - V``."""
    import numpy as np

    predicted = ucb[:, None] - slope * distances  # row: candidate source, column: target
    gain = np.maximum(best_so_far[None, :], predicted) - best_so_far[None, :]
    return np.asarray(gain.sum(axis=1), dtype=np.float64)


def _pairwise(contexts: NDArray[np.float64]) -> NDArray[np.float64]:
    import numpy as np

    return np.asarray(np.linalg.norm(contexts[:, None, :] - contexts[None, :, :], axis=-1), dtype=np.float64)


def mbtl_next(
    contexts: NDArray[np.float64],
    trained: Sequence[int],
    performance: Sequence[float],
    *,
    slope: float,
    beta: float = 1.0,
    prior_mean: float = 1.0,
    prior_std: float = 0.1,
    floor: float = 0.0,
    transfer: NDArray[np.float64] | None = None,
) -> tuple[int, NDArray[np.float64]]:
    """The next context index and the acquisition values (``-inf`` at trained contexts).

    ``transfer[s, x]`` (optional): measured performance of the model trained on ``trained[s]`` at context ``x``.
    """
    import numpy as np

    if len(trained) >= contexts.shape[0]:
        raise ToolError("every context is already trained", hint="there is no next training task")
    dist = _pairwise(contexts)
    mean, std = gp_posterior(contexts, trained, performance, prior_mean=prior_mean, prior_std=prior_std)
    best = np.full(contexts.shape[0], floor)
    for row, s in enumerate(trained):
        reach = transfer[row] if transfer is not None else performance[row] - slope * dist[s]
        best = np.maximum(best, reach)
    acquisition = mbtl_acquisition(dist, mean + beta * std, best, slope)
    acquisition[list(trained)] = -np.inf
    # Ties (the gap saturating at the floor makes several contexts equal) go to the context whose linear model
    # predicts the most before saturation: the smallest total distance, i.e. the centre.
    top = float(np.max(acquisition))
    ties = np.flatnonzero(acquisition >= top - 1e-12 * max(1.0, abs(top)))
    untruncated = (mean + beta * std)[ties] * contexts.shape[0] - slope * dist[ties].sum(axis=1)
    return int(ties[int(np.argmax(untruncated))]), acquisition


def mbtl_sequence(
    contexts: NDArray[np.float64],
    evaluate: object,
    budget: int,
    *,
    slope: float,
    beta: float = 1.0,
    prior_mean: float = 1.0,
    prior_std: float = 0.1,
) -> list[int]:
    """Run MBTL for ``budget`` rounds; ``evaluate(index)`` trains on a context and returns its source performance."""
    trained: list[int] = []
    perf: list[float] = []
    call = evaluate if callable(evaluate) else None
    if call is None:
        raise ToolError("evaluate must be callable")
    for _ in range(min(budget, contexts.shape[0])):
        nxt, _ = mbtl_next(contexts, trained, perf, slope=slope, beta=beta, prior_mean=prior_mean, prior_std=prior_std)
        trained.append(nxt)
        perf.append(float(call(nxt)))
    return trained


class MbtlInput(BaseModel):
    """Arguments of ``next_training_task``: the context set, what was trained so far, and the gap model."""

    contexts: list[float] | list[list[float]] = Field(min_length=1, description="task contexts (numbers or vectors)")
    trained: list[int] = Field(default_factory=list, description="indices of contexts already trained on")
    performance: list[float] = Field(default_factory=list, description="source performance J(s) of each trained one")
    slope: float = Field(gt=0, description="θ: performance lost per unit of context distance in zero-shot transfer")
    beta: float = Field(1.0, ge=0, description="UCB exploration weight")
    prior_mean: float = Field(1.0, description="GP prior mean of J before any training")
    prior_std: float = Field(0.1, gt=0)
    floor: float = Field(0.0, description="performance of an untrained task (the baseline V starts from)")

    @model_validator(mode="after")
    def _check(self) -> MbtlInput:
        if len(self.trained) != len(self.performance):
            raise ValueError("give one performance value per trained context")
        if len(set(self.trained)) != len(self.trained):
            raise ValueError("trained holds a context twice")
        if any(not 0 <= i < len(self.contexts) for i in self.trained):
            raise ValueError("a trained index is outside the context list")
        return self


class MbtlOutput(BaseModel):
    """The next context to train on, its acquisition value, and the GP's view of every context."""

    next_index: int
    next_context: float | list[float]
    acquisition: list[float | None]
    gp_mean: list[float]
    gp_std: list[float]


@tool(
    name="next_training_task",
    family="select",
    paper=_PAPER,
    tags=("transfer", "task-selection", "bayesian-optimisation", "gaussian-process", "contextual-rl", "needs:contexts"),
)
def next_training_task_tool(args: MbtlInput) -> MbtlOutput:
    """Propose the next training context (MBTL): the untrained context whose training is expected to raise the
    performance over all contexts most, under a GP of source performance and a linear generalisation gap."""
    import numpy as np

    raw = [[float(c)] if isinstance(c, int | float) else list(c) for c in args.contexts]
    contexts = load_matrix(raw, "contexts")
    index, acquisition = mbtl_next(
        contexts,
        args.trained,
        args.performance,
        slope=args.slope,
        beta=args.beta,
        prior_mean=args.prior_mean,
        prior_std=args.prior_std,
        floor=args.floor,
    )
    mean, std = gp_posterior(
        contexts, args.trained, args.performance, prior_mean=args.prior_mean, prior_std=args.prior_std
    )
    chosen = args.contexts[index]
    return MbtlOutput(
        next_index=index,
        next_context=float(chosen) if isinstance(chosen, int | float) else list(chosen),
        acquisition=[None if not np.isfinite(a) else float(a) for a in acquisition],
        gp_mean=[float(m) for m in mean],
        gp_std=[float(s) for s in std],
    )
