"""Generative Causal Representation Learning for motion forecasting (Shirahmad Gale Bagi et al., ICML 2023).

GCRL's causal model explains observed past trajectories X and futures Y by *invariant* latent features Z (laws of
motion, shared by every environment) and *variant* features S (motion style). Following the sparse-mechanism-shift
principle, a new environment changes only the prior of S, ``p(S) = Σ_k π_k N(μ_k, diag σ_k²)`` (a Gaussian mixture
over environments); the encoders q(Z|X), q(S|X), the past decoder p(X|S,Z) and the future predictor p(Y|S,Z)
transfer unchanged. Training maximises the ELBO (the paper's Eq. 6 family)::

    E_q[log p(X|S,Z) + log p(Y|S,Z)] - KL(q(Z|X) || p(Z)) - E_q[log q(S|X) - log p(S)]

and low-shot adaptation to a new environment maximises the same ELBO on a few target samples while updating
**only the parameters of p(S)** (π, μ, σ).

Our reading, at toy scale: the reference implementation samples S from an encoder-only posterior at test time,
where a changed prior could not change a prediction. Here the variant encoder outputs a Gaussian *evidence* term
``N(s; m(X), v(X))`` and the posterior is its exact product with the mixture prior (a Gaussian mixture again, with
weights ``w_k ∝ π_k N(m; μ_k, v + σ_k²)``), so the adapted prior reaches the forecast through the posterior, as the
causal model intends. Expectations over the mixture are exact over components and reparameterised within each.
Encoders and decoders are small MLPs (the paper uses LSTM/GAT encoders for crowds). Everything is our torch code;
no library implements GCRL.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_domains.core import (
    adam_fit,
    freeze_except,
    load_array,
    parameter_snapshot,
    require_finite,
    require_ndim,
    seed_all,
)

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

__all__ = [
    "PRIOR_PREFIX",
    "GcrlAdaptInput",
    "GcrlAdaptOutput",
    "adapt_variant_prior",
    "displacement_errors",
    "elbo_loss",
    "fit_gcrl",
    "gcrl_adapt",
    "gcrl_model",
    "mixture_posterior",
]

#: Name prefix of the variant prior's parameters (the only ones adaptation may change).
PRIOR_PREFIX = "prior_s."


def mixture_posterior(
    evidence_mean: torch.Tensor,
    evidence_logvar: torch.Tensor,
    prior_logits: torch.Tensor,
    prior_mean: torch.Tensor,
    prior_logvar: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Posterior ``∝ N(s; m, v) · Σ_k π_k N(s; μ_k, σ_k²)``: component weights ``(B, K)``, means and log-variances
    ``(B, K, D)``. Each component is the Gaussian product; weights are ``π_k N(m; μ_k, v + σ_k²)`` normalised."""
    import torch

    m, v = evidence_mean[:, None, :], evidence_logvar.exp()[:, None, :]
    mu, s2 = prior_mean[None], prior_logvar.exp()[None]
    precision = 1.0 / v + 1.0 / s2
    post_var = 1.0 / precision
    post_mean = post_var * (m / v + mu / s2)
    marginal_var = v + s2
    log_marginal = -0.5 * (((m - mu) ** 2) / marginal_var + marginal_var.log() + math.log(2 * math.pi)).sum(-1)
    weights = torch.softmax(torch.log_softmax(prior_logits, -1)[None] + log_marginal, dim=-1)
    return weights, post_mean, post_var.log()


def _log_normal(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * (((x - mean) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


def gcrl_model(
    obs_len: int, fut_len: int, s_dim: int = 2, z_dim: int = 4, components: int = 3, hidden: int = 64
) -> nn.Module:
    """The GCRL network: invariant and variant encoders, past decoder, future predictor and the two priors."""
    import torch
    from torch import nn

    def mlp(inp: int, out: int) -> nn.Module:
        return nn.Sequential(
            nn.Linear(inp, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out)
        )

    class VariantPrior(nn.Module):
        """p(S): a diagonal Gaussian mixture, one component per (latent) environment."""

        def __init__(self) -> None:
            super().__init__()
            self.logits = nn.Parameter(torch.zeros(components))
            self.mean = nn.Parameter(0.5 * torch.randn(components, s_dim))
            self.logvar = nn.Parameter(torch.zeros(components, s_dim))

    class Gcrl(nn.Module):
        """Encoders q(Z|X), evidence for S, decoders p(X|S,Z), p(Y|S,Z), priors p(Z), p(S)."""

        def __init__(self) -> None:
            super().__init__()
            self.obs_len, self.fut_len, self.s_dim, self.z_dim = obs_len, fut_len, s_dim, z_dim
            self.invariant_encoder = mlp(obs_len * 2, 2 * z_dim)
            self.variant_encoder = mlp(obs_len * 2, 2 * s_dim)
            self.past_decoder = mlp(s_dim + z_dim, obs_len * 2)
            self.future_decoder = mlp(s_dim + z_dim, fut_len * 2)
            self.prior_s = VariantPrior()

        def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            """q(Z|X) mean/log-variance and the mixture posterior of S (weights, means, log-variances)."""
            flat = x.flatten(1)
            z_mean, z_logvar = self.invariant_encoder(flat).chunk(2, -1)
            e_mean, e_logvar = self.variant_encoder(flat).chunk(2, -1)
            prior = self.prior_s
            weights, s_mean, s_logvar = mixture_posterior(
                e_mean, e_logvar.clamp(-8, 6), prior.logits, prior.mean, prior.logvar.clamp(-8, 6)
            )
            return z_mean, z_logvar.clamp(-8, 6), weights, s_mean, s_logvar

        def predict(self, x: torch.Tensor) -> torch.Tensor:
            """Forecast ``(B, fut_len, 2)`` from posterior means of Z and S."""
            z_mean, _, weights, s_mean, _ = self.encode(x)
            s = (weights[..., None] * s_mean).sum(1)
            out: torch.Tensor = self.future_decoder(torch.cat([s, z_mean], -1))
            return out.view(-1, self.fut_len, 2)

    return Gcrl()


def elbo_loss(model: Any, x: torch.Tensor, y: torch.Tensor, noise_std: float = 0.3) -> torch.Tensor:
    """Negative ELBO per sample (mean over the batch); the expectation over S's mixture posterior is exact over
    components and uses one reparameterised sample within each."""
    import torch

    z_mean, z_logvar, weights, s_mean, s_logvar = model.encode(x)
    batch, comps, _ = s_mean.shape
    z = z_mean + torch.randn_like(z_mean) * (0.5 * z_logvar).exp()
    s = s_mean + torch.randn_like(s_mean) * (0.5 * s_logvar).exp()  # (B, K, D): one sample per component
    zk = z[:, None, :].expand(batch, comps, -1)
    latent = torch.cat([s, zk], -1)
    x_hat = model.past_decoder(latent).view(batch, comps, -1)
    y_hat = model.future_decoder(latent).view(batch, comps, -1)
    scale = 2 * noise_std**2
    x_err = ((x_hat - x.flatten(1)[:, None]) ** 2).sum(-1)
    y_err = ((y_hat - y.flatten(1)[:, None]) ** 2).sum(-1)
    log_lik = -(x_err + y_err) / scale
    prior = model.prior_s
    log_pi = torch.log_softmax(prior.logits, -1)
    prior_logvar = prior.logvar.clamp(-8, 6)
    log_p_s = torch.logsumexp(
        log_pi[None, None] + _log_normal(s[:, :, None, :], prior.mean[None, None], prior_logvar[None, None]),
        dim=-1,
    )
    log_q_s = torch.logsumexp(
        torch.log(weights.clamp_min(1e-12))[:, None, :]
        + _log_normal(s[:, :, None, :], s_mean[:, None], s_logvar[:, None]),
        dim=-1,
    )
    kl_z = 0.5 * (z_mean**2 + z_logvar.exp() - 1 - z_logvar).sum(-1)
    per_sample = (weights * (log_lik + log_p_s - log_q_s)).sum(-1) - kl_z
    loss: torch.Tensor = -per_sample.mean()
    return loss


def _batches_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, noise_std: float, batch: int = 64
) -> Callable[[int], torch.Tensor]:
    import torch

    generator = seed_all(seed)

    def loss(step: int) -> torch.Tensor:
        pick = torch.randint(0, x.shape[0], (min(batch, x.shape[0]),), generator=generator)
        return elbo_loss(model, x[pick], y[pick], noise_std)

    return loss


def fit_gcrl(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    steps: int,
    lr: float = 3e-3,
    noise_std: float = 0.3,
    seed: int = 0,
) -> list[float]:
    """Train every part of the model on source environments by maximising the ELBO."""
    import torch

    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    freeze_except(model, lambda name: True)
    return adam_fit(model.parameters(), _batches_loss(model, xt, yt, seed, noise_std), steps=steps, lr=lr)


def adapt_variant_prior(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    steps: int,
    lr: float = 3e-2,
    noise_std: float = 0.3,
    seed: int = 0,
) -> list[str]:
    """Low-shot adaptation: maximise the ELBO on target samples updating only p(S)'s parameters.

    Returns the names of the parameters that changed; every other parameter stays bit-identical (they are frozen,
    and the optimiser only receives the prior's parameters).
    """
    import torch

    if x.shape[0] == 0:
        raise ToolError("no target samples to adapt on", hint="give at least one target trajectory")
    before = parameter_snapshot(model)
    trainable = freeze_except(model, lambda name: name.startswith(PRIOR_PREFIX))
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    try:
        adam_fit(
            [p for n, p in model.named_parameters() if n in trainable],
            _batches_loss(model, xt, yt, seed, noise_std),
            steps=steps,
            lr=lr,
        )
    finally:
        freeze_except(model, lambda name: True)
    return [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]


def displacement_errors(model: Any, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Average and final displacement errors (ADE, FDE) of the model's forecasts."""
    import torch

    with torch.no_grad():
        pred = model.predict(torch.as_tensor(x, dtype=torch.float32)).numpy()
    dist = ((pred - y) ** 2).sum(-1) ** 0.5
    return float(dist.mean()), float(dist[:, -1].mean())


_PAPER = (
    "Generative Causal Representation Learning for Out-of-Distribution Motion Forecasting "
    "(Shirahmad Gale Bagi, Gharaee, Schulte, Crowley; ICML 2023)"
)


class GcrlAdaptInput(BaseModel):
    """Arguments of the ``gcrl_adapt`` tool."""

    source: str = Field(description=".npz with X (n, obs_len, 2) past and Y (n, fut_len, 2) future positions")
    target: str = Field(description=".npz with X and Y from the new environment")
    adapt_samples: int = Field(default=32, gt=0, description="first target samples used for adaptation; rest test")
    components: int = Field(default=3, gt=0, description="Gaussian mixture components of the variant prior p(S)")
    s_dim: int = Field(default=2, gt=0)
    z_dim: int = Field(default=4, gt=0)
    train_steps: int = Field(default=1500, ge=0)
    adapt_steps: int = Field(default=200, ge=0)
    lr: float = Field(default=3e-3, gt=0)
    adapt_lr: float = Field(default=3e-2, gt=0)
    seed: int = 0


class GcrlAdaptOutput(BaseModel):
    """Target test errors before and after adapting the variant prior, and what the adaptation changed."""

    ade_before: float
    fde_before: float
    ade_after: float
    fde_after: float
    changed_parameters: list[str]
    test_samples: int


def _load_xy(path: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = load_array(path, "X"), load_array(path, "Y")
    for label, arr in (("X", x), ("Y", y)):
        require_ndim(f"{name} {label}", arr, (3,), "(samples, steps, 2)")
        require_finite(f"{name} {label}", arr)
        if arr.shape[2] != 2:
            raise ToolError(
                f"{name} {label} has {arr.shape[2]} coordinates; expected 2 (x, y)", hint="use 2-D positions"
            )
    if x.shape[0] != y.shape[0]:
        raise ToolError(
            f"{name} has {x.shape[0]} pasts but {y.shape[0]} futures", hint="pair each past with its future"
        )
    return x, y


@tool(
    name="gcrl_adapt",
    family="domains",
    paper=_PAPER,
    tags=("motion-forecasting", "trajectories", "causal", "few-shot", "domain-adaptation", "transfer"),
    heavy=True,
)
def gcrl_adapt(args: GcrlAdaptInput) -> GcrlAdaptOutput:
    """Train GCRL on source trajectories, then adapt only the variant prior p(S) on a few target trajectories.

    Reports target ADE/FDE before and after adaptation and the names of the parameters the adaptation changed
    (always only p(S)'s).
    """
    sx, sy = _load_xy(args.source, "source")
    tx, ty = _load_xy(args.target, "target")
    if sx.shape[1:] != tx.shape[1:] or sy.shape[1:] != ty.shape[1:]:
        raise ToolError("source and target trajectories have different lengths", hint="use the same obs/fut lengths")
    if tx.shape[0] <= args.adapt_samples:
        raise ToolError(
            f"the target has {tx.shape[0]} samples; need more than adapt_samples={args.adapt_samples}",
            hint="lower adapt_samples so some target samples remain for testing",
        )
    seed_all(args.seed)
    model = gcrl_model(sx.shape[1], sy.shape[1], args.s_dim, args.z_dim, args.components)
    fit_gcrl(model, sx, sy, steps=args.train_steps, lr=args.lr, seed=args.seed)
    test_x, test_y = tx[args.adapt_samples :], ty[args.adapt_samples :]
    ade0, fde0 = displacement_errors(model, test_x, test_y)
    changed = adapt_variant_prior(
        model,
        tx[: args.adapt_samples],
        ty[: args.adapt_samples],
        steps=args.adapt_steps,
        lr=args.adapt_lr,
        seed=args.seed,
    )
    ade1, fde1 = displacement_errors(model, test_x, test_y)
    return GcrlAdaptOutput(
        ade_before=ade0,
        fde_before=fde0,
        ade_after=ade1,
        fde_after=fde1,
        changed_parameters=changed,
        test_samples=int(test_x.shape[0]),
    )
