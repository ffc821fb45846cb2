"""PNG plots for reports: the pass@k curve, solved by category, verification time, and run comparisons.

matplotlib is imported lazily with the non-interactive Agg backend (it is the ``plot`` extra); without it the
report is still written, with a note instead of plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from malot.errors import BackendUnavailableError

__all__ = ["comparison_plot", "report_plots"]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise BackendUnavailableError(
            "matplotlib is not installed, so no plots can be drawn", hint="pip install 'malot[plot]'"
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def report_plots(summary: dict[str, Any], out: Path) -> dict[str, Path]:
    """Draw the three report plots into ``out``; returns their paths by kind."""
    plt = _pyplot()
    written: dict[str, Path] = {}
    title = f"{summary['run']['dataset']} · {summary['run']['strategy']} · {summary['run']['model']}"

    ks = [int(k) for k in summary["pass_at_k"]]
    values = [100 * v for v in summary["pass_at_k"].values()]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    if ks:
        ax.plot(ks, values, marker="o", color="#1f77b4")
        for k, v in zip(ks, values, strict=True):
            if len(ks) <= 16:
                ax.annotate(f"{v:.1f}", (k, v), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
        ax.set_xscale("log", base=2) if len(ks) > 8 else ax.set_xticks(ks)
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("pass@k (%)")
    ax.set_ylim(0, 105)
    ax.grid(True, alpha=0.3)
    ax.set_title(f"pass@k — {title}", fontsize=9)
    fig.tight_layout()
    written["pass_at_k"] = _save(fig, plt, out / "pass_at_k.png")

    cats = summary["categories"]
    names = list(cats)
    totals = [cats[c]["problems"] for c in names]
    solved = [cats[c]["solved"] for c in names]
    fig, ax = plt.subplots(figsize=(max(6.4, 0.9 * len(names) + 2), 4.2), dpi=120)
    xs = range(len(names))
    ax.bar(xs, totals, color="#d9d9d9", label="problems")
    ax.bar(xs, solved, color="#2ca02c", label="solved")
    for x, s, t in zip(xs, solved, totals, strict=True):
        ax.text(x, t, f"{s}/{t}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(xs), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("problems")
    ax.set_ylim(0, max(totals, default=1) * 1.15 + 0.5)
    ax.legend(fontsize=8)
    ax.set_title(f"solved by category — {title}", fontsize=9)
    fig.tight_layout()
    written["categories"] = _save(fig, plt, out / "solved_by_category.png")

    times = summary["verification"]["times_s"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    if times:
        ax.hist(times, bins=min(30, max(5, len(times) // 3)), color="#ff7f0e", edgecolor="white")
        median = summary["verification"]["median_s"]
        ax.axvline(median, color="black", linestyle="--", linewidth=1, label=f"median {median:.3f} s")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no Lean checks recorded", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("Lean verification time per check (s)")
    ax.set_ylabel("checks")
    ax.set_title(f"verification time — {title}", fontsize=9)
    fig.tight_layout()
    written["verification"] = _save(fig, plt, out / "verification_time.png")
    return written


def comparison_plot(data: dict[str, Any], path: Path) -> Path:
    """A two-panel plot: solved counts (both / A only / B only) and the two pass@k curves."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120)
    la, lb = data["a"]["run_id"], data["b"]["run_id"]
    labels = ["both", f"only A\n{la}", f"only B\n{lb}", "neither"]
    counts = [len(data["solved_by_both"]), len(data["only_a"]), len(data["only_b"]), len(data["neither"])]
    bars = left.bar(range(4), counts, color=["#2ca02c", "#1f77b4", "#ff7f0e", "#d9d9d9"])
    for bar, count in zip(bars, counts, strict=True):
        left.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), str(count), ha="center", va="bottom")
    left.set_xticks(range(4), labels, fontsize=8)
    left.set_ylabel("problems")
    left.set_title(f"{data['common_problems']} problems finished by both", fontsize=9)
    for key, color in (("a", "#1f77b4"), ("b", "#ff7f0e")):
        curve = data[key]["pass_at_k"]
        if curve:
            right.plot(
                [int(k) for k in curve],
                [100 * v for v in curve.values()],
                marker="o",
                color=color,
                label=f"{key.upper()}: {data[key]['run_id']}",
            )
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_ylim(0, max(counts, default=1) * 1.15 + 0.5)
    right.set_xlabel("k")
    right.set_ylabel("pass@k (%)")
    right.set_ylim(0, 105)
    right.grid(True, alpha=0.3)
    right.legend(fontsize=8)
    right.set_title("pass@k", fontsize=9)
    fig.tight_layout()
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: Path) -> Path:
    fig.savefig(path)
    plt.close(fig)
    return path
