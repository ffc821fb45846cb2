"""W2PGNN claim: the graphon-based feasibility of pre-training predicts which downstream graph datasets actually gain
from a pre-trained GNN, better than a simple topology-statistics similarity.

Pre-training graphs (16 nodes): two-block SBMs (p_in 0.9, p_out ∈ [0.02, 0.2]) and Erdős-Rényi graphs
(p ∈ [0.1, 0.3]); a 2-layer dense GCN (torch-geometric's ``DenseGCNConv``) is pre-trained to regress each graph's
density and mean clustering. Seven binary downstream graph-classification datasets, some generated like the
pre-training data and some not (SBM variants, ER variants, Barabási-Albert, random geometric graphs, SBM vs ER).
Gain = test accuracy of the fine-tuned pre-trained GCN minus that of the same GCN trained from scratch (12 training
graphs, 318 test graphs, 40 steps each), averaged over inits. Predictors: W2PGNN feasibility (2 graphon bases by
k-means on topology statistics, resolution 16; GW to the downstream graphon as in the paper, and the per-graph
variant) and the baseline -‖mean topology stats(downstream) - mean topology
stats(pre-train)‖ (standardised). Figure: Spearman ρ of each predictor with the gain across the datasets.

    python plugins/select/benchmarks/w2pgnn_claim.py --quick --out w2pgnn.json
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx
import numpy as np
import torch
from malot_select.core.graphs import topology_features
from malot_select.w2pgnn import pretrain_feasibility
from scipy.stats import spearmanr
from torch import nn

from malot.benchmarking import benchmark_args, summarize, write_result

N = 16
TRAIN = 12  # downstream training graphs: few, so that what pre-training learned can matter
Gen = Callable[[np.random.Generator], np.ndarray]


def sbm(p_in: float, p_out: float) -> Gen:
    return lambda r: nx.to_numpy_array(
        nx.stochastic_block_model([8, 8], [[p_in, p_out], [p_out, p_in]], seed=int(r.integers(2**31)))
    )


def er(p: float) -> Gen:
    return lambda r: nx.to_numpy_array(nx.erdos_renyi_graph(N, p, seed=int(r.integers(2**31))))


def ba(m: int) -> Gen:
    return lambda r: nx.to_numpy_array(nx.barabasi_albert_graph(N, m, seed=int(r.integers(2**31))))


def geo(radius: float) -> Gen:
    return lambda r: nx.to_numpy_array(nx.random_geometric_graph(N, radius, seed=int(r.integers(2**31))))


DOWNSTREAM: dict[str, tuple[Gen, Gen]] = {
    "sbm_pout": (sbm(0.9, 0.05), sbm(0.9, 0.15)),
    "sbm_pin": (sbm(0.6, 0.1), sbm(0.8, 0.1)),
    "er_low": (er(0.15), er(0.25)),
    "er_high": (er(0.45), er(0.6)),
    "ba": (ba(2), ba(3)),
    "geometric": (geo(0.3), geo(0.4)),
    "sbm_vs_er": (sbm(0.9, 0.1), er(0.5)),
}


class Gcn(nn.Module):
    def __init__(self, out: int) -> None:
        super().__init__()
        from torch_geometric.nn import DenseGCNConv

        self.conv1, self.conv2 = DenseGCNConv(2, 32), DenseGCNConv(32, 32)
        self.head = nn.Linear(32, out)

    def encode(self, adj: torch.Tensor) -> torch.Tensor:
        deg = adj.sum(-1, keepdim=True)
        x = torch.cat([torch.ones_like(deg), deg / N], dim=-1)
        h = torch.relu(self.conv2(torch.relu(self.conv1(x, adj)), adj))
        return h.mean(1)

    def forward(self, adj: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(adj))


def pretrain_graphs(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    out = []
    for i in range(count):
        out.append(sbm(0.9, rng.uniform(0.02, 0.2))(rng) if i % 2 == 0 else er(rng.uniform(0.1, 0.3))(rng))
    return out


def train(model: nn.Module, adj: torch.Tensor, target: torch.Tensor, steps: int, classify: bool) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        out = model(adj)
        loss = nn.functional.cross_entropy(out, target) if classify else nn.functional.mse_loss(out, target)
        opt.zero_grad()
        loss.backward()
        opt.step()


def run(seed: int, quick: bool) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    pre = pretrain_graphs(rng, 60 if quick else 120)
    pre_adj = torch.tensor(np.stack(pre), dtype=torch.float32)
    pre_target = torch.tensor(np.stack([topology_features(a)[:2] for a in pre]), dtype=torch.float32)
    torch.manual_seed(seed)
    pretrained = Gcn(2)
    train(pretrained, pre_adj, pre_target * 5, 150 if quick else 300, classify=False)
    pre_stats = np.stack([topology_features(a) for a in pre])
    mean_s, std_s = pre_stats.mean(0), pre_stats.std(0) + 1e-9
    inits = 2 if quick else 4
    rows = {}
    for name, (g0, g1) in DOWNSTREAM.items():
        graphs = [g0(rng) for _ in range(165)] + [g1(rng) for _ in range(165)]
        labels = np.array([0] * 165 + [1] * 165)
        perm = rng.permutation(len(graphs))
        adj = torch.tensor(np.stack(graphs)[perm], dtype=torch.float32)
        y = torch.tensor(labels[perm])
        tr, te = slice(0, TRAIN), slice(TRAIN, None)
        gains = []
        for init in range(inits):
            accs = []
            for use_pretrained in (True, False):
                torch.manual_seed(seed * 100 + init)
                model = Gcn(2)
                if use_pretrained:
                    state = {k: v for k, v in pretrained.state_dict().items() if not k.startswith("head")}
                    model.load_state_dict(state, strict=False)
                train(model, adj[tr], y[tr], 40, classify=True)
                with torch.no_grad():
                    accs.append(float((model(adj[te]).argmax(-1) == y[te]).float().mean()))
            gains.append(accs[0] - accs[1])
        sample = [graphs[i] for i in perm[:10]]
        feas = pretrain_feasibility(pre, sample, n_bases=2, resolution=16, steps=10 if quick else 20, seed=seed)
        per_graph = pretrain_feasibility(
            pre, sample, n_bases=2, resolution=16, steps=10 if quick else 20, seed=seed, downstream_as="graphs"
        )
        down_stats = np.stack([topology_features(a) for a in sample]).mean(0)
        rows[name] = {
            "gain": float(np.mean(gains)),
            "feasibility": feas.feasibility,
            "alpha": feas.alpha.tolist(),
            "feasibility_per_graph": per_graph.feasibility,
            "stats_similarity": float(-np.linalg.norm((down_stats - mean_s) / std_s)),
        }
    gain = [r["gain"] for r in rows.values()]
    return {
        "seed": seed,
        "datasets": rows,
        "spearman_feasibility": float(spearmanr([r["feasibility"] for r in rows.values()], gain).statistic),
        "spearman_stats_similarity": float(spearmanr([r["stats_similarity"] for r in rows.values()], gain).statistic),
        "spearman_feasibility_per_graph": float(
            spearmanr([r["feasibility_per_graph"] for r in rows.values()], gain).statistic
        ),
    }


def main() -> None:
    args = benchmark_args(__doc__, default_out="w2pgnn_claim.json", seeds=3, quick_seeds=1)
    runs = [run(seed, args.quick) for seed in args.seed_list]
    feas = summarize([r["spearman_feasibility"] for r in runs])  # type: ignore[misc]
    stats = summarize([r["spearman_stats_similarity"] for r in runs])  # type: ignore[misc]
    per_graph = summarize([r["spearman_feasibility_per_graph"] for r in runs])  # type: ignore[misc]
    gains = {n: summarize([r["datasets"][n]["gain"] for r in runs]) for n in DOWNSTREAM}  # type: ignore[index]
    write_result(
        args.out,
        {
            "spearman_gain_vs_feasibility": feas["mean"],
            "spearman_gain_vs_stats_similarity": stats["mean"],
            "spearman_gain_vs_feasibility_per_graph": per_graph["mean"],
            **{f"gain_{n}": g["mean"] for n, g in gains.items()},
        },
        details={
            "spearman_feasibility": feas,
            "spearman_stats_similarity": stats,
            "spearman_feasibility_per_graph": per_graph,
            "gains": gains,
            "runs": runs,
            "claim": "W2PGNN feasibility correlates with the pre-training gain better than topology-statistics "
            "similarity",
            "claim_holds": feas["mean"] > stats["mean"] and feas["mean"] > 0,
            "disclosure": "the first full run fine-tuned on 30 graphs for 60 steps; pre-training then changed nothing "
            "(gains within +-0.04, results in w2pgnn_claim_30_train_graphs.json), so the setting was changed to 12 "
            "graphs and 40 steps after seeing that run; those two runs compared the bases' mixture with each "
            "downstream graph (now feasibility_per_graph); the tool's default then became the paper's comparison with "
            "the downstream graphon after reading the authors' code (w2pgnn_claim_per_graph_12_train_graphs.json "
            "holds the per-graph run)",
        },
    )


if __name__ == "__main__":
    main()
