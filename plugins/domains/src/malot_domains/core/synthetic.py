"""Synthetic data generators shared by tests, benchmarks and tool examples (each seeded, NumPy only).

Every generator documents the structure it plants, so a test can check that a method recovers it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["eeg_trials", "mirror_pair_1d", "seasonal_series", "style_trajectories", "symmetric_clusters_2d"]


def seasonal_series(
    seed: int,
    length: int,
    channels: int = 1,
    periods: tuple[float, float] = (8.0, 40.0),
    components: int = 2,
    noise: float = 0.05,
    trend: float = 0.0,
) -> np.ndarray:
    """A ``(length, channels)`` series: per channel, a sum of ``components`` sines with periods drawn uniformly from
    ``periods`` (random phases and amplitudes), a linear trend of slope up to ``trend`` per step, Gaussian noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    out = np.zeros((length, channels))
    for c in range(channels):
        for _ in range(components):
            period = rng.uniform(*periods)
            out[:, c] += rng.uniform(0.5, 1.5) * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
        out[:, c] += rng.uniform(-trend, trend) * t + rng.normal(0.0, noise, size=length)
    return out


def eeg_trials(
    seed: int,
    subjects: int,
    trials_per_class: int,
    channels: int = 8,
    sfreq: float = 100.0,
    seconds: float = 2.0,
    subject_shift: float = 1.0,
    erd: float = 0.6,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Motor-imagery-like EEG: ``X (n, channels, samples)``, labels ``y`` (0 = left, 1 = right), ``subject``.

    Two mu-rhythm sources (band-limited noise around a subject-specific peak in 8-13 Hz, Butterworth-filtered) sit
    over the left and right hemisphere; imagining a hand movement desynchronises the contralateral source (its
    amplitude times ``erd``).
    Sources and six background sources are mixed into the channels by a mixing matrix shared across subjects plus a
    subject-specific perturbation of relative size ``subject_shift``; pink-ish sensor noise is added. The class is
    therefore in the band power of spatially filtered signals, and subjects differ in peak frequency and mixing.
    """
    import numpy as np
    from scipy.signal import butter, sosfiltfilt

    rng = np.random.default_rng(seed)
    samples = round(sfreq * seconds)
    n_sources = 8
    base = rng.normal(size=(channels, n_sources))
    base[: channels // 2, 0] += 2.0  # left mu source projects mostly to the left channels
    base[channels // 2 :, 1] += 2.0  # right mu source to the right channels
    xs, ys, subs = [], [], []
    for subject in range(subjects):
        mixing = base + subject_shift * np.abs(base).mean() * rng.normal(size=base.shape)
        peak = rng.uniform(8.5, 12.5)
        n = 2 * trials_per_class
        labels = np.repeat([0, 1], trials_per_class)
        white = rng.normal(size=(n * n_sources, samples + 100))
        mu_band = butter(4, [peak - 1.5, peak + 1.5], btype="bandpass", fs=sfreq, output="sos")
        background_band = butter(4, [1.0, 30.0], btype="bandpass", fs=sfreq, output="sos")
        mu = sosfiltfilt(mu_band, white[: n * 2], axis=-1)
        background = sosfiltfilt(background_band, white[n * 2 :], axis=-1)
        mu = mu[:, 50:-50].reshape(n, 2, samples) * 1.5
        background = background[:, 50:-50].reshape(n, n_sources - 2, samples)
        # event-related desynchronisation: class 0 (left hand) weakens the right source, class 1 the left one
        mu[labels == 0, 1] *= erd
        mu[labels == 1, 0] *= erd
        sources = np.concatenate([mu, background], axis=1)
        signals = np.einsum("cs,nst->nct", mixing, sources)
        signals += 0.3 * np.cumsum(rng.normal(size=signals.shape), axis=-1) / np.sqrt(samples)
        signals += 0.2 * rng.normal(size=signals.shape)
        xs.append(signals)
        ys.append(labels)
        subs.append(np.full(n, subject))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys), np.concatenate(subs)


def style_trajectories(
    seed: int,
    count: int,
    curvature: tuple[float, float],
    acceleration: tuple[float, float],
    obs_len: int = 8,
    fut_len: int = 12,
    noise: float = 0.05,
    canonical: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Agents moving under one law of motion with an environment-specific style: ``X (count, obs_len, 2)`` observed
    positions and ``Y (count, fut_len, 2)`` future positions, both relative to the last observed position, and the
    true style ``(count, 2)``.

    Invariant mechanism: constant turn rate and acceleration, ``θ_t = θ_0 + κ t``, ``v_t = v_0 + a t``,
    ``p_{t+1} = p_t + v_t (cos θ_t, sin θ_t)``. Variant (style) features: ``κ ~ N(curvature)`` and
    ``a ~ N(acceleration)`` given as ``(mean, std)``: the environment changes only their distribution. Observed
    positions carry Gaussian noise of size ``noise``; futures are clean. ``canonical`` rotates each sample so its
    observed heading (first to last observed position) points along +x, the usual trajectory normalisation.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    kappa = rng.normal(curvature[0], curvature[1], size=count)
    accel = rng.normal(acceleration[0], acceleration[1], size=count)
    theta0 = rng.uniform(0, 2 * np.pi, size=count)
    v0 = rng.uniform(0.3, 0.5, size=count)
    steps = np.arange(obs_len + fut_len)
    theta = theta0[:, None] + kappa[:, None] * steps
    speed = np.clip(v0[:, None] + accel[:, None] * steps, 0.0, None)
    moves = np.stack([speed * np.cos(theta), speed * np.sin(theta)], axis=-1)
    path = np.cumsum(moves, axis=1)
    anchor = path[:, obs_len - 1 : obs_len]
    x = path[:, :obs_len] - anchor + rng.normal(0, noise, size=(count, obs_len, 2))
    y = path[:, obs_len:] - anchor
    if canonical:
        heading = x[:, -1] - x[:, 0]
        angle = -np.arctan2(heading[:, 1], heading[:, 0])
        cos, sin = np.cos(angle), np.sin(angle)
        rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
        x, y = np.einsum("nij,ntj->nti", rotation, x), np.einsum("nij,ntj->nti", rotation, y)
    return x.astype(np.float32), y.astype(np.float32), np.stack([kappa, accel], axis=1)


def mirror_pair_1d(seed: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 1-D mirror-ambiguity case: source ``x``, target ``y`` (unpaired, drawn independently), their auxiliary
    labels ``u_x`` and ``u_y``. The true translation is the identity; ``u = 0`` draws from ``U(-1, 0.5)``, ``u = 1``
    from ``U(-0.5, 1)``. The marginal (an equal mix) is symmetric, so ``x -> -x`` matches it exactly as well, but
    it maps ``P(x|u=0)`` onto ``U(-0.5, 1) = P(y|u=1)``: only the conditionals tell the two apart."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def draw(labels: np.ndarray) -> np.ndarray:
        drawn: np.ndarray = np.where(
            labels == 0, rng.uniform(-1, 0.5, labels.shape), rng.uniform(-0.5, 1, labels.shape)
        )
        return drawn

    u_x = rng.integers(0, 2, count)
    u_y = rng.integers(0, 2, count)
    return draw(u_x)[:, None], draw(u_y)[:, None], u_x, u_y


def symmetric_clusters_2d(
    seed: int, count: int, angle: float = 0.5, groups: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """2-D unpaired translation with symmetric ambiguity: source ``x`` is a mixture of four Gaussians on the corners
    of a square (invariant under its 8 symmetries), the target is ``y = R(angle) x + (1, -0.5)``. Auxiliary label
    ``u`` (``groups`` values) changes the mixture weights over the corners differently per value, as attributes do.
    Returns ``x, y, u_x, u_y`` and the true translation of ``x`` (``(count, 2)``) for scoring."""
    import numpy as np

    rng = np.random.default_rng(seed)
    corners = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    weights = rng.dirichlet(np.full(4, 0.7), size=groups)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shift = np.array([1.0, -0.5])

    def draw(labels: np.ndarray) -> np.ndarray:
        which = np.array([rng.choice(4, p=weights[label]) for label in labels])
        drawn: np.ndarray = corners[which] + 0.25 * rng.normal(size=(labels.shape[0], 2))
        return drawn

    u_x = rng.integers(0, groups, count)
    u_y = rng.integers(0, groups, count)
    x = draw(u_x)
    y = draw(u_y) @ rotation.T + shift
    truth: np.ndarray = x @ rotation.T + shift
    return x, y, u_x, u_y, truth
