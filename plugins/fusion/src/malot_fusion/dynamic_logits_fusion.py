"""Dynamic Logits Fusion (Fan et al., "On Giant's Shoulders: Effortless Weak to Strong by Dynamic Logits Fusion").

At every decoding step the large model's logits ``z_L`` are shifted by the weighted logit differences of small
fine-tuned experts and their small base model::

    z_fused = z_L + sum_t alpha_t * (z_{E_t} - z_B)

The weights are not fixed: each step they are chosen so that the distribution shift the experts cause in the large
model matches the shift fine-tuning caused in the small model, measured by KL divergence. For one expert this is the
1-D problem ``KL(P_fused || P_L) = KL(P_E || P_B)`` with ``alpha`` in ``[lower, upper]``. Because ``P_fused`` is an
exponential tilt of ``P_L``, ``d/dalpha KL(P_fused || P_L) = alpha * Var_{P_fused}(Delta) >= 0``: the left side is
monotone in ``alpha >= 0``, so a bracketed Newton/bisection search finds the unique solution (or the bound).

For several experts (one shared base, as in the paper's multi-task setting) the weights come from one joint bounded
least-squares solve (``scipy.optimize.least_squares`` with box bounds). Two residual definitions are offered:

* ``"marginal"`` (default): ``KL(P_fused || P_{fused without expert t}) - KL(P_{E_t} || P_B)`` for each ``t`` — each
  expert's own contribution to the fused distribution shifts it as much as fine-tuning shifted that expert. This has
  as many equations as unknowns and reduces to the single-expert equation for one expert.
* ``"total"``: ``KL(P_fused || P_L) - KL(P_{E_t} || P_B)`` for each ``t`` — the paper's literal objective (the total
  shift of the large model against each expert's shift, squared and summed); its minimiser is a level set, and the
  solver returns the point reached from the per-expert 1-D solutions.

Everything here is a plain typed torch function; :mod:`malot_fusion.fusion_processor` wraps it as a logits processor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

__all__ = [
    "FusionRecorder",
    "FusionStep",
    "Objective",
    "fuse_logits",
    "kl_from_logits",
    "logit_shift",
    "solve_fusion_weights",
    "solve_single_weight",
]

Objective = Literal["marginal", "total"]


def kl_from_logits(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """``KL(softmax(p) || softmax(q))`` along the last dimension, in float64; tokens with ``p = 0`` contribute 0."""
    return _kl_from_log_probs(
        torch.log_softmax(p_logits.double(), dim=-1), torch.log_softmax(q_logits.double(), dim=-1)
    )


def _kl_from_log_probs(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``KL(P || Q)`` from log-probabilities (so a caller can reuse one log-softmax for several KLs)."""
    p = log_p.exp()
    terms = torch.where(p > 0, p * (log_p - log_q), 0.0)
    return terms.sum(dim=-1).clamp_min(0.0)


def logit_shift(expert_logits: torch.Tensor, base_logits: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The expert's logit difference from its base, fitted to the large model's vocabulary size.

    Padded vocabularies differ between model sizes; the shared prefix is shifted, extra large-model entries get 0.
    Non-finite differences (a token masked in both small models) become 0 so they never create NaNs.
    """
    delta = torch.nan_to_num(expert_logits.double() - base_logits.double(), nan=0.0, posinf=0.0, neginf=0.0)
    width = delta.shape[-1]
    if width > vocab_size:
        return delta[..., :vocab_size]
    if width < vocab_size:
        return torch.nn.functional.pad(delta, (0, vocab_size - width))
    return delta


def solve_single_weight(
    large_logits: torch.Tensor,
    delta: torch.Tensor,
    target_kl: torch.Tensor,
    *,
    lower: float = 0.0,
    upper: float = 2.0,
    rtol: float = 1e-4,
    max_iter: int = 60,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """Solve ``KL(P_{L + alpha*delta} || P_L) = target`` for ``alpha`` in ``[lower, upper]``, all rows at once.

    ``large_logits`` and ``delta`` are ``(batch, vocab)``, ``target_kl`` is ``(batch,)``. The KL is increasing in
    ``alpha >= 0``, so each row keeps a bracket and takes a Newton step (derivative ``alpha * Var(delta)``) when it
    lands inside the bracket, else bisects. Rows whose target lies outside ``[KL(lower), KL(upper)]`` get the bound.
    ``start`` (e.g. the previous decoding step's weights) is a first guess; it only changes how fast it converges.
    """
    return _solve_single(large_logits, delta, target_kl, lower, upper, rtol, max_iter, start)[0]


def _solve_single(
    large_logits: torch.Tensor,
    delta: torch.Tensor,
    target_kl: torch.Tensor,
    lower: float,
    upper: float,
    rtol: float,
    max_iter: int,
    start: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`solve_single_weight` that also returns ``KL(P_{L + alpha*delta} || P_L)`` at the returned ``alpha``.

    All rows are searched at once in torch (no per-row Python loop, no NumPy round trip): one log-softmax and one
    small matmul per iteration give every row's KL and slope, and the loop stops as soon as every row has converged
    (with a warm start from the previous step, usually after a few iterations). A bound is only evaluated when a
    row's Newton step is clamped onto it: the brackets start just outside ``[lower, upper]``, so a clamped step
    counts as inside until the bound itself has been tried, and a row rests at a bound when its step cannot leave it.
    """
    if not 0.0 <= lower < upper:
        raise ValueError(f"need 0 <= lower < upper for a monotone search, got [{lower}, {upper}]")
    z = large_logits.double()
    d = delta.double()
    target = target_kl.double()
    batch = z.shape[0]
    at_lower = target <= 0.0 if lower == 0.0 else torch.zeros_like(target, dtype=torch.bool)  # KL(P_L || P_L) = 0
    if bool(at_lower.all()):
        return torch.full_like(target, lower), torch.zeros_like(target)
    # P_alpha is an exponential tilt of P_L, so log P_alpha - log P_L = alpha * delta - c(alpha) with one constant
    # per row; reading it at the large model's top token (always finite, unlike masked -inf tokens) gives
    # KL = alpha * E[delta] - c(alpha), and dKL/dalpha = alpha * Var(delta).
    top = z.argmax(dim=-1, keepdim=True)
    d_top = d.gather(1, top)[:, 0]
    log_p0_top = torch.log_softmax(z, dim=-1).gather(1, top)[:, 0]
    moments = torch.stack((d, d * d), dim=-1)  # (batch, vocab, 2): E[delta] and E[delta^2] in one matmul

    def kl_and_slope(alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_p = torch.log_softmax(torch.addcmul(z, alpha[:, None], d), dim=-1)
        m = torch.bmm(log_p.exp()[:, None, :], moments)[:, 0]
        mean = m[:, 0]
        kl = (alpha * (mean - d_top) + log_p.gather(1, top)[:, 0] - log_p0_top).clamp_min(0.0)
        return kl, alpha * torch.addcmul(m[:, 1], mean, mean, value=-1.0).clamp_min(0.0)

    box = torch.tensor([lower, upper], dtype=torch.float64, device=z.device)
    outside = torch.nextafter(box, box + torch.tensor([-1.0, 1.0], dtype=torch.float64, device=z.device))
    lo = outside[0].expand(batch)
    hi = outside[1].expand(batch)
    tol = rtol * target.clamp_min(1e-12)
    alpha = torch.full_like(target, (lower + upper) / 2) if start is None else start.double().clamp(lower, upper)
    kl = torch.zeros_like(target)
    for _ in range(max_iter):
        kl, slope = kl_and_slope(alpha)
        err = kl - target
        newton = (alpha - err / slope).clamp(lower, upper)
        # converged, or resting on a bound the step cannot leave (target beyond KL(upper), or below KL(lower))
        done = (err.abs() <= tol) | (newton == alpha) | at_lower
        if bool(done.all()):
            break
        lo = torch.where(err < 0, alpha, lo)
        hi = torch.where(err > 0, alpha, hi)
        inside = (newton > lo) & (newton < hi)
        alpha = torch.where(done, alpha, torch.where(inside, newton, (lo + hi) / 2))
    else:
        kl = kl_and_slope(alpha)[0]  # the last iteration moved alpha after its KL was taken
    alpha = torch.where(at_lower, lower, alpha)
    return alpha, torch.where(at_lower, 0.0, kl)


def _joint_row(
    z: torch.Tensor,
    deltas: torch.Tensor,
    targets: torch.Tensor,
    start: torch.Tensor,
    lower: float,
    upper: float,
    objective: Objective,
) -> torch.Tensor:
    """One row of the joint bounded least-squares solve (``deltas`` is ``(experts, vocab)``)."""
    import numpy as np
    from scipy.optimize import least_squares

    log_p_large = torch.log_softmax(z, dim=-1)

    def residuals(alpha_np: Any) -> Any:
        alpha = torch.from_numpy(np.asarray(alpha_np, dtype=np.float64))
        contributions = alpha[:, None] * deltas
        fused = z + contributions.sum(0)
        log_f = torch.log_softmax(fused, dim=-1)
        f = log_f.exp()
        if objective == "total":
            kl_total = (f * (log_f - log_p_large)).sum()
            res = kl_total - targets
        else:
            without = torch.log_softmax(fused[None, :] - contributions, dim=-1)
            res = (f[None, :] * (log_f[None, :] - without)).sum(-1) - targets
        return res.numpy()

    x0 = start.clamp(lower, upper).numpy()
    solution = least_squares(residuals, x0, bounds=(lower, upper), method="trf", xtol=1e-10, ftol=1e-12, gtol=1e-12)
    x = np.clip(solution.x, lower, upper)
    span = upper - lower
    x[np.abs(x - lower) <= 1e-6 * span] = lower  # the interior-point solver stops just inside active bounds
    x[np.abs(x - upper) <= 1e-6 * span] = upper
    return torch.from_numpy(x)


def solve_fusion_weights(
    large_logits: torch.Tensor,
    deltas: Sequence[torch.Tensor] | torch.Tensor,
    target_kls: torch.Tensor,
    *,
    lower: float = 0.0,
    upper: float = 2.0,
    objective: Objective = "marginal",
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-step fusion weights, ``(batch, experts)``, for ``deltas`` of shape ``(experts, batch, vocab)``.

    ``target_kls`` is ``(experts, batch)``: each expert's ``KL(P_E || P_B)``. One expert uses the exact 1-D search;
    several use one bounded least-squares solve per row started from the per-expert 1-D solutions. ``start``
    ``(batch, experts)`` warm-starts the 1-D searches (the previous step's weights).
    """
    return _solve_weights(large_logits, deltas, target_kls, lower, upper, objective, start)[0]


def _solve_weights(
    large_logits: torch.Tensor,
    deltas: Sequence[torch.Tensor] | torch.Tensor,
    target_kls: torch.Tensor,
    lower: float,
    upper: float,
    objective: Objective,
    start: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`solve_fusion_weights` plus, for one expert, ``KL(P_fused || P_L)`` at the solution (else ``None``)."""
    stacked = torch.stack(list(deltas)) if not isinstance(deltas, torch.Tensor) else deltas
    stacked = stacked.double()
    z = large_logits.double()
    n_experts = stacked.shape[0]
    if n_experts == 1:
        alpha, kl = _solve_single(
            z, stacked[0], target_kls[0], lower, upper, 1e-4, 60, None if start is None else start[:, 0]
        )
        return alpha[:, None], kl
    singles = torch.stack(
        [
            solve_single_weight(
                z, stacked[t], target_kls[t], lower=lower, upper=upper, start=None if start is None else start[:, t]
            )
            for t in range(n_experts)
        ],
        dim=-1,
    )
    rows = [
        _joint_row(z[b], stacked[:, b], target_kls[:, b].double(), singles[b], lower, upper, objective)
        for b in range(z.shape[0])
    ]
    return torch.stack(rows), None


def fuse_logits(large_logits: torch.Tensor, deltas: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``z_L + sum_t w_t * delta_t``; ``deltas`` is ``(experts, batch, vocab)``, ``weights`` ``(batch, experts)``."""
    z = large_logits.double()
    w = weights.double()
    d = deltas.double()
    if d.shape[0] == 1:  # one expert: a single multiply-add, no einsum dispatch
        return torch.addcmul(z, w[:, :1], d[0]).to(large_logits.dtype)
    shift = torch.einsum("be,ebv->bv", w, d)
    return (z + shift).to(large_logits.dtype)


@dataclass
class FusionStep:
    """What one fused decoding step did, per batch row: the weights, each expert's target KL, the fused KL shift.

    ``call`` numbers the ``generate`` calls the processor has served, so steps of different calls can be told apart.
    """

    step: int
    weights: list[list[float]]
    target_kl: list[list[float]]
    fused_kl: list[float]
    call: int = 0


@dataclass
class FusionRecorder:
    """Collects :class:`FusionStep` records; attach them to a run trace with ``ctx.note(**recorder.as_note())``.

    ``callback`` (optional) is called with every step as it happens, e.g. to stream weights into a trace writer.
    """

    callback: Callable[[FusionStep], None] | None = None
    steps: list[FusionStep] = field(default_factory=list)

    def record(self, step: FusionStep) -> None:
        """Store one step and forward it to the callback."""
        self.steps.append(step)
        if self.callback is not None:
            self.callback(step)

    def clear(self) -> None:
        """Forget the recorded steps (e.g. between two generation calls)."""
        self.steps.clear()

    def weights_per_step(self, row: int = 0) -> list[list[float]]:
        """The weights of one batch row at every recorded step, ``[step][expert]``."""
        return [s.weights[row] for s in self.steps if row < len(s.weights)]

    def as_note(self) -> dict[str, Any]:
        """A JSON-ready summary for ``RunContext.note``: per-step weights, targets and fused KLs."""
        return {
            "fusion_steps": len(self.steps),
            "fusion_calls": len({s.call for s in self.steps}),
            "fusion_step_call": [s.call for s in self.steps],
            "fusion_weights": [s.weights for s in self.steps],
            "fusion_target_kl": [s.target_kl for s in self.steps],
            "fusion_fused_kl": [s.fused_kl for s in self.steps],
        }
