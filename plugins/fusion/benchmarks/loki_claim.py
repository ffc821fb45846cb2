"""Loki claim: with a label metric, predicting the Fréchet mean of a classifier's probabilities beats the argmax,
and it predicts labels the classifier never saw.

Labels are the 36 nodes of a 6x6 grid graph (shortest-path metric); inputs are the nodes' grid coordinates plus
Gaussian noise. A small softmax classifier is trained only on the 9 labels at even rows and even columns, then
evaluated on samples of all 36 labels (27 of them unseen in training).

    python plugins/fusion/benchmarks/loki_claim.py --quick --out loki.json
"""

from __future__ import annotations

import torch
from malot_fusion.loki import LokiPredictor, graph_distances

from malot.benchmarking import benchmark_args, write_result


def main() -> None:
    args = benchmark_args(__doc__, default_out="loki_claim.json", seeds=1)
    torch.manual_seed(args.seed)
    side = 6
    n_labels = side * side
    coords = torch.tensor([[i // side, i % side] for i in range(n_labels)], dtype=torch.float32)
    edges = [(i, i + 1) for i in range(n_labels) if (i + 1) % side] + [(i, i + side) for i in range(n_labels - side)]
    dist = graph_distances(n_labels, edges)
    observed = [i for i in range(n_labels) if (i // side) % 2 == 0 and (i % side) % 2 == 0]
    noise = 0.35
    train_n = 200 if args.quick else 1000
    test_n = 40 if args.quick else 200

    train_labels = torch.tensor(observed).repeat_interleave(train_n)
    train_x = coords[train_labels] + noise * torch.randn(train_labels.numel(), 2)
    targets = torch.tensor([observed.index(int(y)) for y in train_labels])
    model = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, len(observed)))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150 if args.quick else 1000):
        loss = torch.nn.functional.cross_entropy(model(train_x), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    test_labels = torch.arange(n_labels).repeat_interleave(test_n)
    test_x = coords[test_labels] + noise * torch.randn(test_labels.numel(), 2)
    with torch.no_grad():
        probs = torch.softmax(model(test_x), dim=-1)
    loki = LokiPredictor(dist, observed).predict(probs)
    argmax = torch.tensor(observed)[probs.argmax(-1)]
    unseen = ~torch.isin(test_labels, torch.tensor(observed))

    def scores(pred: torch.Tensor) -> dict[str, float]:
        err = dist[pred, test_labels]
        return {
            "accuracy": float((pred == test_labels).double().mean()),
            "unseen_accuracy": float((pred == test_labels)[unseen].double().mean()),
            "mean_squared_distance": float((err**2).mean()),
        }

    s_loki, s_argmax = scores(loki), scores(argmax)
    write_result(
        args.out,
        {
            "loki_accuracy": s_loki["accuracy"],
            "argmax_accuracy": s_argmax["accuracy"],
            "loki_unseen_accuracy": s_loki["unseen_accuracy"],
            "argmax_unseen_accuracy": s_argmax["unseen_accuracy"],
            "loki_mean_squared_distance": s_loki["mean_squared_distance"],
            "argmax_mean_squared_distance": s_argmax["mean_squared_distance"],
        },
        details={
            "labels": n_labels,
            "observed_labels": observed,
            "input_noise": noise,
            "test_samples_per_label": test_n,
            "distinct_labels_predicted": {
                "loki": int(loki.unique().numel()),
                "argmax": int(argmax.unique().numel()),
            },
            "claim": "Loki predicts unseen labels and lowers the expected squared distance vs argmax",
            "claim_holds": s_loki["unseen_accuracy"] > 0
            and s_loki["mean_squared_distance"] < s_argmax["mean_squared_distance"],
        },
    )


if __name__ == "__main__":
    main()
