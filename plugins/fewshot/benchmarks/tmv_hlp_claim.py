"""TMV-HLP claim: transductive multi-view embedding + hypergraph propagation beats direct nearest-prototype zero-shot
classification in each semantic view (the projection-domain-shift baselines).

Synthetic zero-shot task: 30 classes with attribute vectors ``a_c ∈ R¹²`` and word vectors ``w_c = B a_c + noise``
(R¹⁵); visual features ``x = A a_c + e_c + noise`` (R³⁰, ``e_c`` a class-specific part attributes do not explain).
20 seen classes train RBF kernel-ridge regressions x → attributes and x → word vectors (scikit-learn; the paper
used kernel regressors too. A first run with *linear* ridge made both semantic views exact linear functions of ``x``,
which makes every canonical correlation 1 and the embedding degenerate (TMV-HLP 0.23 vs DAP 0.43, 3 seeds); the
regressors were switched after seeing that, the tool's settings were not changed); the 10 unseen classes'
instances (40 each) are described by three views: ``x``, predicted attributes, predicted word vectors. Compared:

* ``dap_attributes``: nearest attribute prototype by cosine (direct attribute prediction style);
* ``nearest_word_vector``: nearest word-vector prototype by cosine;
* ``embedding_nearest_prototype``: nearest prototype in the TMV embedding (no propagation; best over views);
* ``tmv_hlp``: the tool (dim 10, k 5, α 0.9, p 4; fixed before the run).

    python plugins/fewshot/benchmarks/tmv_hlp_claim.py --quick --out tmv_hlp_claim.json

Figures: unseen-class accuracy per method (means over seeds) and ``gain_vs_best_direct`` (percentage points).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from malot_fewshot.tmv_hlp import multiview_cca, tmv_hlp_predict

from malot.benchmarking import benchmark_args, summarize, write_result

SEEN, UNSEEN, PER_CLASS = 20, 10, 40


def _cosine_nearest(x: np.ndarray, protos: np.ndarray) -> np.ndarray:
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    pn = protos / np.linalg.norm(protos, axis=1, keepdims=True)
    return (xn @ pn.T).argmax(1)


def _run(seed: int) -> dict[str, float]:
    from sklearn.kernel_ridge import KernelRidge

    rng = np.random.default_rng(seed)
    n_classes = SEEN + UNSEEN
    attrs = rng.normal(size=(n_classes, 12))
    words = attrs @ rng.normal(size=(12, 15)) / np.sqrt(12) + 0.5 * rng.normal(size=(n_classes, 15))
    a_map = rng.normal(size=(12, 30)) / np.sqrt(12)
    specific = 0.8 * rng.normal(size=(n_classes, 30))

    def draw(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(classes, PER_CLASS)
        x = np.tanh(attrs[y] @ a_map) + specific[y] + 0.5 * rng.normal(size=(len(y), 30))
        return x, y

    x_seen, y_seen = draw(np.arange(SEEN))
    x_un, y_un = draw(np.arange(SEEN, n_classes))
    to_attr = KernelRidge(alpha=1.0, kernel="rbf", gamma=1.0 / 30).fit(x_seen, attrs[y_seen])
    to_word = KernelRidge(alpha=1.0, kernel="rbf", gamma=1.0 / 30).fit(x_seen, words[y_seen])
    attr_view, word_view = to_attr.predict(x_un), to_word.predict(x_un)
    proto_a, proto_w = attrs[SEEN:], words[SEEN:]
    target = y_un - SEEN
    out = {
        "dap_attributes": float((_cosine_nearest(attr_view, proto_a) == target).mean()),
        "nearest_word_vector": float((_cosine_nearest(word_view, proto_w) == target).mean()),
    }
    views = [x_un, attr_view, word_view]
    cca = multiview_cca(views, 10)
    emb = [
        float((_cosine_nearest(cca.embed(v, views[v]), cca.embed(v, p)) == target).mean())
        for v, p in ((1, proto_a), (2, proto_w))
    ]
    out["embedding_nearest_prototype"] = max(emb)
    result = tmv_hlp_predict(views, [None, proto_a, proto_w], dim=10, k=5, alpha=0.9, power=4.0)
    out["tmv_hlp"] = float((result.labels == target).mean())
    return out


def main() -> None:
    """Run every seed and write the JSON result."""
    args = benchmark_args(__doc__, default_out="results/tmv_hlp_claim.json", seeds=10, quick_seeds=3, threads=None)
    runs = [_run(seed) for seed in args.seed_list]
    methods = ("dap_attributes", "nearest_word_vector", "embedding_nearest_prototype", "tmv_hlp")
    summary: dict[str, Any] = {m: summarize([r[m] for r in runs]) for m in methods}
    figures = {f"{m}_acc": summary[m]["mean"] for m in methods}
    gains = [100 * (r["tmv_hlp"] - max(r["dap_attributes"], r["nearest_word_vector"])) for r in runs]
    figures["gain_vs_best_direct"] = summarize(gains)["mean"]
    summary["gain_vs_best_direct"] = summarize(gains)
    write_result(args.out, figures, details={"seeds": args.seed_list, "summary": summary, "runs": runs})


if __name__ == "__main__":
    main()
