"""Exact inductive bias (Boopathy et al., ICML 2024, "Towards Exact Computation of Inductive Bias").

The inductive bias a task needs is the information, in bits, required to pick a hypothesis that generalises to test
error ``ε`` out of a hypothesis space that already fits the training data: ``I(ε) = -log₂ P(e(h) ≤ ε)`` with ``h``
drawn from that space. We sample hypotheses from a kernel (GP) hypothesis space conditioned on the training data —
``h = m + L z`` on the test inputs with ``m`` the posterior mean, ``LLᵀ`` the posterior covariance and
``z ~ N(0, I)`` — so every hypothesis interpolates the training data (up to the noise); each hypothesis's test MSE
is a quadratic form of Gaussians, which the paper models by a scaled non-central χ² distribution
``e ~ s · χ²_k(λ)``. We fit ``(s, k, λ)`` by maximum likelihood (SciPy's ``ncx2``/``chi2`` ``fit``; a
three-moment fit is the alternative), which extrapolates ``P(e ≤ ε)`` to ``ε`` far below anything the samples reach.

``I(ε)`` is non-increasing in ``ε`` (a CDF is non-decreasing), and near 0 once ``ε`` exceeds the largest sampled
error. The sampling and the χ² fit are the paper's; the RBF kernel matrix is scikit-learn's, the rest NumPy/SciPy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_select.core.arrays import load_array, load_matrix

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "InductiveBiasInput",
    "InductiveBiasOutput",
    "ScaledNcx2",
    "fit_scaled_ncx2",
    "inductive_bias_bits",
    "inductive_bias_tool",
    "sample_hypothesis_errors",
]

_PAPER = "Boopathy et al. 2024, Towards Exact Computation of Inductive Bias (ICML)"


@dataclass(frozen=True)
class ScaledNcx2:
    """``s · χ²_k(λ)``: scale ``s``, degrees of freedom ``k`` and non-centrality ``λ``."""

    scale: float
    df: float
    nc: float

    def cdf(self, x: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """``P(e ≤ x)``."""
        import numpy as np
        from scipy import stats

        value = np.asarray(x, dtype=np.float64) / self.scale
        if self.nc <= 0:
            return np.asarray(stats.chi2.cdf(value, self.df), dtype=np.float64)
        return np.asarray(stats.ncx2.cdf(value, self.df, self.nc), dtype=np.float64)

    def logcdf(self, x: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """``log P(e ≤ x)``, finite far in the lower tail (Sankaran's approximation where the CDF underflows)."""
        import numpy as np
        from scipy import stats

        value = np.asarray(x, dtype=np.float64) / self.scale
        if self.nc <= 0:
            return np.asarray(stats.chi2.logcdf(value, self.df), dtype=np.float64)
        with np.errstate(divide="ignore"):
            direct = np.log(stats.ncx2.cdf(value, self.df, self.nc))
        # Far in the lower tail the CDF underflows; there Sankaran's (1963) normal approximation of
        # (X/(k+λ))^h gives the log-probability (the authors' code falls back the same way).
        k, lam = self.df, self.nc
        h = 1 - 2 / 3 * (k + lam) * (k + 3 * lam) / (k + 2 * lam) ** 2
        p = (k + 2 * lam) / (k + lam) ** 2
        m = (h - 1) * (1 - 3 * h)
        centre = 1 + h * p * (h - 1 - 0.5 * (2 - h) * m * p)
        spread = h * np.sqrt(2 * p) * (1 + 0.5 * m * p)
        z = (np.power(np.maximum(value, 0.0) / (k + lam), h) - centre) / spread
        return np.asarray(np.where(np.isfinite(direct), direct, stats.norm.logcdf(z)), dtype=np.float64)


def fit_scaled_ncx2(errors: NDArray[np.float64], method: str = "mle") -> ScaledNcx2:
    """Fit ``s · χ²_k(λ)`` to sampled errors: by maximum likelihood (``"mle"``, SciPy's ``fit`` with the location
    fixed at 0, started from the central χ² fit; the better of central and non-central by likelihood) or by moments.

    MLE follows the whole distribution, including its lower tail, much better than three moments do.
    """
    import numpy as np
    from scipy import stats

    e = np.asarray(errors, dtype=np.float64)
    if e.size < 3 or float(e.std()) <= 0:
        raise ToolError("the sampled errors have no spread", hint="give more test points or a noisier space")
    if method == "moments":
        return _fit_moments(e)
    if method != "mle":
        raise ToolError(f"unknown fit method {method!r}", hint="use 'mle' or 'moments'")
    df0, _, scale0 = stats.chi2.fit(e, floc=0)
    best = ScaledNcx2(scale=float(scale0), df=float(df0), nc=0.0)
    best_ll = float(np.sum(stats.chi2.logpdf(e, df0, 0, scale0)))
    with np.errstate(all="ignore"):
        df1, nc1, _, scale1 = stats.ncx2.fit(e, df0, 0.1, floc=0, scale=scale0)
        ll = float(np.sum(stats.ncx2.logpdf(e, df1, nc1, 0, scale1)))
    if np.isfinite(ll) and ll > best_ll and nc1 > 0:
        best = ScaledNcx2(scale=float(scale1), df=float(df1), nc=float(nc1))
    return best


def _fit_moments(errors: NDArray[np.float64]) -> ScaledNcx2:
    """Fit ``s · χ²_k(λ)`` by its cumulants ``κ₁ = s(k+λ)``, ``κ₂ = 2s²(k+2λ)``, ``κ₃ = 8s³(k+3λ)``.

    Where the third cumulant is too small for a non-negative ``λ`` the fit falls back to a central scaled χ²
    (``λ = 0``, two moments).
    """
    import numpy as np
    from scipy import stats

    e = np.asarray(errors, dtype=np.float64)
    k1 = float(e.mean())
    k2 = float(e.var(ddof=1))
    k3 = float(stats.moment(e, 3))
    if k1 <= 0 or k2 <= 0:
        raise ToolError("the sampled errors have no spread", hint="give more test points or a noisier space")
    # Solve for (s, k, λ): with a = k + λ, b = k + 2λ, c = k + 3λ: b - a = c - b = λ.
    if k3 > 0:
        # s from κ₂, κ₃ given a linear λ: use the identity κ₃/(8 s³) - κ₂/(2 s²) = κ₂/(2 s²) - κ₁/s.
        # That is a quadratic in 1/s: (κ₃/8) u³ - κ₂ u² + κ₁ u = 0 -> (κ₃/8) u² - κ₂ u + κ₁ = 0.
        disc = k2 * k2 - 0.5 * k3 * k1
        if disc >= 0:
            for u in sorted(((k2 - np.sqrt(disc)) / (k3 / 4), (k2 + np.sqrt(disc)) / (k3 / 4))):
                if u <= 0:
                    continue
                s = 1.0 / u
                a = k1 / s
                lam = k2 / (2 * s * s) - a
                k = a - lam
                if lam >= 0 and k > 0:
                    return ScaledNcx2(scale=s, df=k, nc=lam)
    s = k2 / (2 * k1)
    return ScaledNcx2(scale=s, df=k1 / s, nc=0.0)


def rbf_kernel(x: NDArray[np.float64], y: NDArray[np.float64], length_scale: float) -> NDArray[np.float64]:
    """The RBF kernel matrix (scikit-learn's ``RBF``)."""
    import numpy as np
    from sklearn.gaussian_process.kernels import RBF

    return np.asarray(RBF(length_scale=length_scale)(x, y), dtype=np.float64)


def sample_hypothesis_errors(
    train_x: NDArray[np.float64],
    train_y: NDArray[np.float64],
    test_x: NDArray[np.float64],
    test_y: NDArray[np.float64],
    *,
    length_scale: float = 1.0,
    noise: float = 1e-6,
    samples: int = 2000,
    seed: int = 0,
) -> NDArray[np.float64]:
    """Test MSE of ``samples`` hypotheses drawn from the RBF-kernel GP conditioned on the training data."""
    import numpy as np

    k_tt = rbf_kernel(train_x, train_x, length_scale) + noise * np.eye(train_x.shape[0])
    k_st = rbf_kernel(test_x, train_x, length_scale)
    k_ss = rbf_kernel(test_x, test_x, length_scale)
    chol = np.linalg.cholesky(k_tt)
    solve = np.linalg.solve(chol, k_st.T)
    mean = k_st @ np.linalg.solve(chol.T, np.linalg.solve(chol, train_y))
    cov = k_ss - solve.T @ solve
    evals, evecs = np.linalg.eigh((cov + cov.T) / 2)
    root = evecs * np.sqrt(np.clip(evals, 0.0, None))
    z = np.random.default_rng(seed).standard_normal((test_x.shape[0], samples))
    hypotheses = mean[:, None] + root @ z
    return np.asarray(np.mean((hypotheses - test_y[:, None]) ** 2, axis=0), dtype=np.float64)


def inductive_bias_bits(fit: ScaledNcx2, epsilon: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """``-log₂ P(e ≤ ε)`` under the fitted error distribution (``inf`` where the CDF underflows)."""
    import numpy as np

    return np.asarray(-fit.logcdf(epsilon) / np.log(2.0), dtype=np.float64)


class InductiveBiasInput(BaseModel):
    """Arguments of ``inductive_bias``: a regression task (train/test inputs and targets) and error levels."""

    train_x: Any = Field(description="n x d training inputs (path or nested lists)")
    train_y: Any = Field(description="n training targets")
    test_x: Any = Field(description="m x d test inputs")
    test_y: Any = Field(description="m test targets")
    epsilons: list[float] = Field(min_length=1, description="test-MSE levels ε to report the bits for")
    length_scale: float = Field(1.0, gt=0, description="RBF length scale of the hypothesis space")
    noise: float = Field(1e-6, gt=0, description="how closely hypotheses must fit the training data")
    samples: int = Field(2000, ge=50, le=200_000)
    fit: str = Field("mle", description="how to fit the scaled χ²: 'mle' or 'moments'")
    seed: int = 0


class InductiveBiasOutput(BaseModel):
    """Bits of inductive bias per ε (fitted and, where the samples reach, empirical) and the fitted distribution."""

    epsilons: list[float]
    bits: list[float | None]
    empirical_bits: list[float | None]
    scale: float
    df: float
    nc: float
    error_min: float
    error_mean: float
    error_max: float


@tool(
    name="inductive_bias",
    family="select",
    paper=_PAPER,
    tags=("theory", "inductive-bias", "generalisation", "kernel", "needs:train_x", "needs:test_x"),
)
def inductive_bias_tool(args: InductiveBiasInput) -> InductiveBiasOutput:
    """Estimate the inductive bias (bits) a regression task needs to reach test MSE ε: sample kernel hypotheses
    that fit the training data, fit a scaled non-central χ² to their test errors, report -log₂ P(error ≤ ε)."""
    import numpy as np

    train_x = load_matrix(args.train_x, "train_x")
    train_y = load_array(args.train_y, "train_y").reshape(-1)
    test_x = load_matrix(args.test_x, "test_x")
    test_y = load_array(args.test_y, "test_y").reshape(-1)
    if train_y.size != train_x.shape[0] or test_y.size != test_x.shape[0]:
        raise ToolError("one target per input row is needed", hint="check train_y/test_y lengths")
    if train_x.shape[1] != test_x.shape[1]:
        raise ToolError("train_x and test_x differ in input dimension")
    if any(e <= 0 or not np.isfinite(e) for e in args.epsilons):
        raise ToolError("every ε must be a positive number", hint="ε is a test mean squared error")
    errors = sample_hypothesis_errors(
        train_x,
        train_y,
        test_x,
        test_y,
        length_scale=args.length_scale,
        noise=args.noise,
        samples=args.samples,
        seed=args.seed,
    )
    fit = fit_scaled_ncx2(errors, args.fit)
    eps = np.asarray(args.epsilons, dtype=np.float64)
    bits = inductive_bias_bits(fit, eps)
    empirical = [float(-np.log2(p)) if (p := float(np.mean(errors <= e))) > 0 else None for e in eps]
    return InductiveBiasOutput(
        epsilons=list(args.epsilons),
        bits=[float(b) if np.isfinite(b) else None for b in bits],
        empirical_bits=empirical,
        scale=fit.scale,
        df=fit.df,
        nc=fit.nc,
        error_min=float(errors.min()),
        error_mean=float(errors.mean()),
        error_max=float(errors.max()),
    )
