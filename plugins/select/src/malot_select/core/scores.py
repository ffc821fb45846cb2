"""Transferability base scores on extracted features: LogME, LEEP, NLEEP and SFDA.

Each score takes target-task features ``F`` (``n x D``, one row per sample, as a candidate model embeds them) and
integer labels ``y`` and returns one number; a higher number predicts a better fine-tuned model.

* **LogME** (You et al., ICML 2021, "LogME: Practical Assessment of Pre-trained Models for Transfer Learning",
  Eq. 2-4 and Alg. 1-2): for each class ``k`` the one-vs-rest target ``y_k`` is modelled as ``y_k = F w + ε`` with
  prior ``w ~ N(0, α⁻¹ I)`` and noise ``ε ~ N(0, β⁻¹ I)``; ``α, β`` maximise the evidence by MacKay's fixed point
  ``γ = Σ βσᵢ/(α+βσᵢ)``, ``α = γ/‖m‖²``, ``β = (n-γ)/‖Fm-y‖²`` with ``m = β(αI+βFᵀF)⁻¹Fᵀy``; the score is the
  maximised log evidence per sample, averaged over classes. We iterate to a tight tolerance (the authors stop at a
  1 % change of α/β) so the result is the evidence's stationary point.
* **LEEP** (Nguyen et al., ICML 2020, Eq. 1-2): ``P(y|z) = P(y,z)/P(z)`` from source-label probabilities ``θ(x)``;
  score ``(1/n) Σᵢ log Σ_z P(yᵢ|z) θ(xᵢ)_z``.
* **NLEEP** (Li et al., CVPR 2021, "Ranking Neural Checkpoints", Sec. 3.3): LEEP with ``θ(x)`` the posterior of a
  Gaussian mixture fitted (scikit-learn) on PCA-reduced features (80 % of the variance kept).
* **SFDA** (Shao et al., ECCV 2022, "Not All Models Are Equal", Eq. 3-7): regularised Fisher discriminant analysis
  with shrinkage ``λ = exp(-a·λmax(S_w))``, a linear discriminant's posterior, then the *self-challenging* step:
  each sample is mixed towards the mean of the other classes in proportion to its misclassification probability
  (ConfMix) and the FDA is refitted; the score is the mean probability of the true class.

The formulas are the papers'; PCA and the mixture model are scikit-learn's, eigen-solvers SciPy's/NumPy's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "BASE_SCORES",
    "LogMEEvidence",
    "base_score",
    "leep",
    "logme",
    "logme_evidence",
    "nleep",
    "sfda",
]

BASE_SCORES = ("logme", "sfda", "nleep")


@dataclass(frozen=True)
class LogMEEvidence:
    """The LogME fixed point for one target vector: evidence per sample, ``α``, ``β``, posterior mean ``m``."""

    evidence: float
    alpha: float
    beta: float
    mean: NDArray[np.float64]
    iterations: int


def logme_evidence(
    features: NDArray[np.float64], target: NDArray[np.float64], *, max_iter: int = 1000, tol: float = 1e-10
) -> LogMEEvidence:
    """Maximise the Bayesian linear-regression evidence of ``target`` given ``features`` (LogME Alg. 1-2).

    Uses the thin SVD ``F = U S Vᵀ`` so every step is ``O(min(n, D))``; ``FᵀF`` has eigenvalues ``σᵢ = sᵢ²`` and
    ``D - rank`` zeros, which enter ``log|αI + βFᵀF|`` as ``log α``.
    """
    import numpy as np

    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    n, d = f.shape
    u, s, vt = np.linalg.svd(f, full_matrices=False)
    if s.size == 0 or float(s.max()) <= 1e-12:
        raise ToolError("the features are all zero: LogME is undefined", hint="check the feature extraction")
    sigma = s**2
    z = u.T @ y  # y in the left singular basis
    y_perp = float(y @ y - z @ z)  # the part of y outside the column space of F
    alpha, beta = 1.0, 1.0
    # Floors keep α, β finite when y lies in the column space of F (n <= rank: the evidence grows without bound as
    # β -> ∞; the authors add 1e-5 to both denominators for the same reason).
    tiny = 1e-10 * max(float(y @ y), 1e-300)
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        gamma = float(np.sum(beta * sigma / (alpha + beta * sigma)))
        coef = beta * s * z / (alpha + beta * sigma)  # m in the right singular basis
        m_sq = float(coef @ coef)
        residual = float(np.sum((z - s * coef) ** 2) + y_perp)
        new_alpha = gamma / max(m_sq, tiny)
        new_beta = max(n - gamma, 1e-12) / max(residual, tiny)
        done = abs(new_alpha - alpha) <= tol * abs(alpha) and abs(new_beta - beta) <= tol * abs(beta)
        alpha, beta = new_alpha, new_beta
        if done:
            break
    coef = beta * s * z / (alpha + beta * sigma)
    m_sq = float(coef @ coef)
    residual = float(np.sum((z - s * coef) ** 2) + y_perp)
    log_det = float(np.sum(np.log(alpha + beta * sigma))) + (d - sigma.size) * float(np.log(alpha))
    evidence = (
        0.5 * d * np.log(alpha)
        + 0.5 * n * np.log(beta)
        - 0.5 * beta * residual
        - 0.5 * alpha * m_sq
        - 0.5 * log_det
        - 0.5 * n * np.log(2 * np.pi)
    )
    return LogMEEvidence(float(evidence) / n, float(alpha), float(beta), vt.T @ coef, iterations)


def _one_hot(labels: NDArray[np.int64]) -> NDArray[np.float64]:
    import numpy as np

    out = np.zeros((labels.size, int(labels.max()) + 1))
    out[np.arange(labels.size), labels] = 1.0
    return out


def logme(features: NDArray[np.float64], labels: NDArray[np.int64]) -> float:
    """LogME of a classification task: the mean over classes of the per-sample log evidence of one-hot targets."""
    targets = _one_hot(labels)
    return float(
        sum(logme_evidence(features, targets[:, k]).evidence for k in range(targets.shape[1])) / targets.shape[1]
    )


def leep(source_probs: NDArray[np.float64], labels: NDArray[np.int64]) -> float:
    """LEEP (Nguyen et al. 2020): the mean log-likelihood of the empirical conditional ``P(y|z)`` classifier."""
    import numpy as np

    theta = np.asarray(source_probs, dtype=np.float64)
    if theta.shape[0] != labels.size:
        raise ToolError("source probabilities and labels disagree in the number of samples")
    joint = _one_hot(labels).T @ theta / labels.size  # P(y, z), classes x source labels
    marginal = joint.sum(axis=0, keepdims=True)  # P(z)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)  # P(y | z)
    eep = np.sum(theta * conditional[labels], axis=1)
    return float(np.mean(np.log(np.maximum(eep, np.finfo(np.float64).tiny))))


def nleep(
    features: NDArray[np.float64],
    labels: NDArray[np.int64],
    *,
    components_per_class: int = 5,
    variance_kept: float = 0.8,
    seed: int = 0,
) -> float:
    """NLEEP (Li et al. 2021): LEEP with a Gaussian mixture's posteriors on PCA-reduced features as source labels."""
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    n = features.shape[0]
    reduced = features
    if features.shape[1] > 1 and n > 1:
        reduced = PCA(n_components=variance_kept, svd_solver="full", random_state=seed).fit_transform(features)
    classes = int(labels.max()) + 1
    components = max(1, min(components_per_class * classes, n // 2))
    mixture = GaussianMixture(components, covariance_type="diag", reg_covar=1e-4, random_state=seed, max_iter=200)
    posteriors = mixture.fit(reduced).predict_proba(reduced)
    return leep(np.asarray(posteriors, dtype=np.float64), labels)


def _fda_posterior(
    x: NDArray[np.float64], labels: NDArray[np.int64], shrinkage: float | None
) -> tuple[NDArray[np.float64], float]:
    """Regularised FDA (SFDA Eq. 3-5): posterior probabilities of a linear discriminant, and the shrinkage used."""
    import numpy as np
    from scipy import linalg

    classes = int(labels.max()) + 1
    d = x.shape[1]
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    priors = counts / counts.sum()
    means = np.zeros((classes, d))
    np.add.at(means, labels, x)
    means /= counts[:, None]
    within = np.zeros((d, d))
    for k in range(classes):
        part = x[labels == k] - means[k]
        within += priors[k] * (part.T @ part) / part.shape[0]
    if shrinkage is None:
        largest = float(np.linalg.eigvalsh(within)[-1])
        shrinkage = max(float(np.exp(-5.0 * largest)), 1e-10)  # the authors' a = 5, floored as in their code
    scale = np.trace(within) / d
    within_reg = (1.0 - shrinkage) * within + shrinkage * scale * np.eye(d)
    centred = x - x.mean(axis=0)
    total = centred.T @ centred / x.shape[0]
    total_reg = (1.0 - shrinkage) * total + shrinkage * (np.trace(total) / d) * np.eye(d)
    between = total_reg - within_reg
    jitter = 1e-10 * max(scale, 1e-12) * np.eye(d)
    evals, evecs = linalg.eigh(between, within_reg + jitter)
    evecs = evecs[:, np.argsort(evals)[::-1]]
    coef = means @ evecs @ evecs.T
    intercept = -0.5 * np.sum(means * coef, axis=1) + np.log(priors)
    logits = x @ coef.T + intercept
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs, shrinkage


def sfda(features: NDArray[np.float64], labels: NDArray[np.int64]) -> float:
    """SFDA (Shao et al. 2022): self-challenging regularised FDA; the mean probability of the true class."""
    import numpy as np

    x = np.array(features, dtype=np.float64, copy=True)
    classes = int(labels.max()) + 1
    probs, shrinkage = _fda_posterior(x, labels, None)
    soft = np.exp(probs)
    soft /= soft.sum(axis=1, keepdims=True)  # the authors soften the posterior before ConfMix
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    means = np.zeros((classes, x.shape[1]))
    np.add.at(means, labels, x)
    means /= counts[:, None]
    others = (means.sum(axis=0, keepdims=True) - means) / max(classes - 1, 1)
    right = soft[np.arange(labels.size), labels][:, None]
    x = right * x + (1.0 - right) * others[labels]
    probs, _ = _fda_posterior(x, labels, shrinkage)
    return float(np.mean(probs[np.arange(labels.size), labels]))


def base_score(name: str, features: NDArray[np.float64], labels: NDArray[np.int64], *, seed: int = 0) -> float:
    """Dispatch to one base score by name (``logme``, ``sfda`` or ``nleep``)."""
    if name == "logme":
        return logme(features, labels)
    if name == "sfda":
        return sfda(features, labels)
    if name == "nleep":
        return nleep(features, labels, seed=seed)
    raise ToolError(f"unknown base score {name!r}", hint=f"choose one of {', '.join(BASE_SCORES)}")
