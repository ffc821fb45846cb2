"""BTM claim: weighting domain experts by the posterior over domains given the context nearly matches the oracle
domain expert, and beats both a uniform average of the experts and one dense model trained on all domains.

Synthetic domains are random sparse Markov chains over one vocabulary; each expert is a bigram LM (add-k counts)
trained on its domain; the dense baseline is a bigram LM trained on the union of the same data. Figures are
per-token perplexities on held-out sequences from every domain.

    python plugins/fusion/benchmarks/btm_ensemble_claim.py --quick --out btm.json
"""

from __future__ import annotations

import math

import torch
from malot_fusion.btm_ensemble import domain_posterior, ensemble_log_probs, estimate_prior

from malot.benchmarking import benchmark_args, write_result


def bigram_log_probs(sequences: torch.Tensor, vocab: int, k: float = 0.1) -> torch.Tensor:
    counts = torch.full((vocab, vocab), k, dtype=torch.float64)
    counts.index_put_(
        (sequences[:, :-1].reshape(-1), sequences[:, 1:].reshape(-1)),
        torch.ones(1, dtype=torch.float64),
        accumulate=True,
    )
    return torch.log(counts / counts.sum(-1, keepdim=True))


def sample_chain(transition: torch.Tensor, n: int, length: int, generator: torch.Generator) -> torch.Tensor:
    out = torch.empty(n, length, dtype=torch.long)
    out[:, 0] = torch.randint(transition.shape[0], (n,), generator=generator)
    for t in range(1, length):
        out[:, t] = torch.multinomial(transition[out[:, t - 1]], 1, generator=generator).squeeze(-1)
    return out


def main() -> None:
    args = benchmark_args(__doc__, default_out="btm_ensemble_claim.json", seeds=1)
    generator = torch.Generator().manual_seed(args.seed)
    domains, vocab, length = 4, 60, 48
    train_n, test_n = (150, 100) if args.quick else (600, 300)
    torch.manual_seed(args.seed)  # the Dirichlet draws use the global generator
    transitions = []
    for _ in range(domains):
        alpha = torch.full((vocab,), 0.05)
        transitions.append(torch.distributions.Dirichlet(alpha).sample((vocab,)).double() + 1e-9)
    train = [sample_chain(t, train_n, length, generator) for t in transitions]
    test = [sample_chain(t, test_n, length, generator) for t in transitions]
    held_out = [sample_chain(t, 20, length, generator) for t in transitions]
    experts = torch.stack([bigram_log_probs(s, vocab) for s in train])  # (experts, vocab, vocab)
    dense = bigram_log_probs(torch.cat(train), vocab)

    def token_log_probs(seqs: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return table[seqs[:, :-1], seqs[:, 1:]]  # (n, length - 1)

    def posterior_path(seqs: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
        per_expert = torch.stack([token_log_probs(seqs, experts[e]) for e in range(domains)], dim=-1)
        context = torch.cumsum(per_expert, dim=1) - per_expert  # log-likelihood of x_<t (exclusive)
        return domain_posterior(context, log_prior)  # (n, length - 1, experts)

    uniform_prior = torch.full((domains,), -math.log(domains), dtype=torch.float64)
    held = torch.cat(held_out)
    prior = estimate_prior(posterior_path(held, uniform_prior)[:, -1, :])

    def nll(seqs: torch.Tensor, domain: int) -> dict[str, float]:
        n, steps = seqs.shape[0], seqs.shape[1] - 1
        contexts = seqs[:, :-1].reshape(-1)
        targets = seqs[:, 1:].reshape(-1)
        expert_rows = experts[:, contexts, :]  # (experts, n*steps, vocab): next-token log-probs
        post = posterior_path(seqs, prior).reshape(n * steps, domains)
        rows = torch.arange(targets.numel())
        out: dict[str, float] = {}
        for name, weights, top_k in (
            ("btm_posterior", post, None),
            ("btm_posterior_top1", post, 1),
            ("uniform_ensemble", torch.full_like(post, 1.0 / domains), None),
        ):
            mixture = ensemble_log_probs(expert_rows, weights, top_k=top_k)
            out[name] = -float(mixture[rows, targets].mean())
        out["dense"] = -float(dense[contexts, targets].mean())
        out["oracle_expert"] = -float(experts[domain][contexts, targets].mean())
        return out

    per_domain = [nll(test[d], d) for d in range(domains)]
    mean = {k: sum(p[k] for p in per_domain) / domains for k in per_domain[0]}
    ppl = {k: math.exp(v) for k, v in mean.items()}
    write_result(
        args.out,
        {
            "btm_posterior_perplexity": ppl["btm_posterior"],
            "uniform_ensemble_perplexity": ppl["uniform_ensemble"],
            "dense_perplexity": ppl["dense"],
            "oracle_expert_perplexity": ppl["oracle_expert"],
            "btm_vs_uniform_ratio": ppl["btm_posterior"] / ppl["uniform_ensemble"],
        },
        details={
            "btm_posterior_top1_perplexity": ppl["btm_posterior_top1"],
            "estimated_prior": torch.exp(prior).tolist(),
            "domains": domains,
            "vocab": vocab,
            "train_sequences_per_domain": train_n,
            "test_sequences_per_domain": test_n,
            "sequence_length": length,
            "per_domain_nll": per_domain,
            "claim": "posterior-weighted ensemble close to the oracle expert, better than uniform and dense",
            "claim_holds": ppl["btm_posterior"] < min(ppl["uniform_ensemble"], ppl["dense"]),
        },
    )


if __name__ == "__main__":
    main()
