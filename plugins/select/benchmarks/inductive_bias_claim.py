"""Exact inductive bias claims: (1) a scaled non-central χ² fitted to a few hundred sampled hypotheses' test errors
predicts the far lower tail (probabilities the small sample never reaches) better than the simple normal fit;
(2) the inductive bias a task needs grows with its input dimension.

Task: y = sin(w·x) on x ∈ [-1, 1]^d with a random unit w, 20 training and 40 test points, RBF hypothesis space
(length scale √d). (1) For d = 2: fit on 300 sampled errors, compare the predicted bits -log₂ P(e ≤ ε) at the
empirical 10⁻³ and 10⁻⁴ quantiles of 100 000 (20 000 in quick mode) fresh samples with the empirical bits there.
(2) For d = 1, 2, 4, 8: bits at ε = half the test targets' variance; figure: Spearman ρ of bits with d.

    python plugins/select/benchmarks/inductive_bias_claim.py --quick --out ib.json
"""

from __future__ import annotations

import numpy as np
from malot_select.inductive_bias import fit_scaled_ncx2, inductive_bias_bits, sample_hypothesis_errors
from scipy import stats

from malot.benchmarking import benchmark_args, summarize, write_result


def task(rng: np.random.Generator, d: int) -> tuple[np.ndarray, ...]:
    w = rng.normal(size=d)
    w /= np.linalg.norm(w)
    x, xt = rng.uniform(-1, 1, (20, d)), rng.uniform(-1, 1, (40, d))
    return x, np.sin(3 * x @ w), xt, np.sin(3 * xt @ w)


def run(seed: int, quick: bool) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    x, y, xt, yt = task(rng, 2)
    ls = float(np.sqrt(2))
    small = sample_hypothesis_errors(x, y, xt, yt, length_scale=ls, samples=300, seed=seed)
    big = sample_hypothesis_errors(x, y, xt, yt, length_scale=ls, samples=20_000 if quick else 100_000, seed=seed + 1)
    levels = [1e-3, 1e-4]
    eps = np.quantile(big, levels)
    truth = -np.log2(levels)
    fits = {"ncx2_mle": fit_scaled_ncx2(small, "mle"), "ncx2_moments": fit_scaled_ncx2(small, "moments")}
    predicted = {name: inductive_bias_bits(f, eps) for name, f in fits.items()}
    mu, sd = small.mean(), small.std(ddof=1)
    predicted["normal"] = -stats.norm.logcdf(eps, mu, sd) / np.log(2)
    error = {name: float(np.mean(np.abs(bits - truth))) for name, bits in predicted.items()}
    dims = [1, 2, 4, 8]
    bits_by_dim = []
    for d in dims:
        xd, yd, xtd, ytd = task(rng, d)
        e = sample_hypothesis_errors(xd, yd, xtd, ytd, length_scale=float(np.sqrt(d)), samples=500, seed=seed)
        bits_by_dim.append(float(inductive_bias_bits(fit_scaled_ncx2(e), 0.5 * float(np.var(ytd)))))
    rho = float(stats.spearmanr(dims, bits_by_dim).statistic)
    return {
        "seed": seed,
        "tail_error_bits": error,
        "bits_by_dim": dict(zip(map(str, dims), bits_by_dim, strict=True)),
        "spearman_bits_vs_dim": rho,
        "predicted_bits": {k: v.tolist() for k, v in predicted.items()},
        "empirical_bits": truth.tolist(),
    }


def main() -> None:
    args = benchmark_args(__doc__, default_out="inductive_bias_claim.json", seeds=5, quick_seeds=2, threads=None)
    runs = [run(seed, args.quick) for seed in args.seed_list]
    err = {k: summarize([r["tail_error_bits"][k] for r in runs]) for k in runs[0]["tail_error_bits"]}  # type: ignore[index,union-attr]
    rho = summarize([r["spearman_bits_vs_dim"] for r in runs])  # type: ignore[misc]
    figures = {f"tail_bits_abs_error_{k}": v["mean"] for k, v in err.items()}
    figures["spearman_bits_vs_input_dim"] = rho["mean"]
    write_result(
        args.out,
        figures,
        details={
            "tail_error_summary": err,
            "spearman_summary": rho,
            "runs": runs,
            "claim": "the fitted chi-squared extrapolates the lower tail better than a normal fit; bits grow with d",
            "claim_holds_tail": err["ncx2_mle"]["mean"] < err["normal"]["mean"],
            "claim_holds_dimension": rho["mean"] > 0.5,
            "disclosure": "the dimension sweep's eps was first 5% of the target variance; that gave infinite bits "
            "(far beyond any sample) in the first quick run, so it was changed to 50% before the reported runs",
        },
    )


if __name__ == "__main__":
    main()
