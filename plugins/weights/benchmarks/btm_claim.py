"""Branch-Train-Merge: a new expert branched from the posterior-weighted average of existing experts learns a new
domain faster than one branched from the seed model or from the uniform average.

Li et al. (2022) grow a forest of domain expert LMs. A new domain's expert starts as a parameter average of the
existing experts weighted by the domain posterior (how well each expert explains the new domain's text), which they
find better than starting from the seed LM. Small synthetic reproduction: domains are random first-order Markov
chains over 48 symbols; the LM is a bigram model (embedding -> tanh -> linear); a seed LM is trained on all domains,
then one expert per domain is branched from it and trained on that domain. The new domain mixes two of the old
domains' transitions (60/30) plus 10% noise. Its expert is initialised (a) by ``btm_branch``'s rule (posterior
weights on 16 new-domain prefixes of 8 symbols, top-2), (b) from the uniform average (``btm_average``), (c) from the
seed LM, and each is trained for the same 10 steps; we report held-out perplexity on the new domain, over seeds.

    python plugins/weights/benchmarks/btm_claim.py --quick --out btm_claim.json

Figures: ``branch_posterior_ppl`` and ``branch_seed_ppl`` (after the same training budget), ``ppl_ratio_vs_seed``
(posterior / seed, below 1 is better); uniform-average and step-0 perplexities, the posterior weights under
``details``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from malot_weights.btm import domain_posterior, top_k_weights
from malot_weights.core import weighted_average

from malot.benchmarking import benchmark_args, mean, write_result

VOCAB, DIM, LENGTH = 48, 32, 32
PROBE_LENGTH = 8  # the posterior is estimated on short prefixes; whole sequences make it one-hot


class Bigram(torch.nn.Module):
    """Next-symbol logits from the current symbol: an embedding followed by a linear map."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, DIM)
        self.out = torch.nn.Linear(DIM, VOCAB)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.out(torch.tanh(self.embed(ids)))
        return out


def sample(transitions: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """``n`` sequences of ``LENGTH`` symbols from a Markov chain."""
    seqs = torch.empty(n, LENGTH, dtype=torch.long)
    seqs[:, 0] = torch.randint(0, VOCAB, (n,), generator=g)
    for t in range(1, LENGTH):
        seqs[:, t] = torch.multinomial(transitions[seqs[:, t - 1]], 1, generator=g).squeeze(1)
    return seqs


def nll(model: torch.nn.Module, state: dict[str, torch.Tensor] | None, seqs: torch.Tensor) -> torch.Tensor:
    """Per-sequence negative log-likelihood (sum over next-symbol predictions)."""
    logits = model(seqs[:, :-1]) if state is None else torch.func.functional_call(model, state, (seqs[:, :-1],))
    logp = torch.log_softmax(logits, -1).gather(-1, seqs[:, 1:].unsqueeze(-1)).squeeze(-1)
    return -logp.sum(-1)


def train(model: Bigram, seqs: torch.Tensor, steps: int, g: torch.Generator, lr: float = 3e-2) -> None:
    """Adam on random mini-batches of sequences."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        batch = seqs[torch.randint(0, seqs.shape[0], (32,), generator=g)]
        loss = nll(model, None, batch).mean() / (LENGTH - 1)
        opt.zero_grad()
        loss.backward()
        opt.step()


def perplexity(model: Bigram, state: dict[str, torch.Tensor] | None, seqs: torch.Tensor) -> float:
    """exp(mean next-symbol NLL)."""
    with torch.no_grad():
        return math.exp(float(nll(model, state, seqs).mean()) / (LENGTH - 1))


def one_seed(seed: int, n_domains: int, seed_steps: int, expert_steps: int, new_steps: int) -> dict[str, Any]:
    """Seed LM, experts, then three initialisations of the new domain's expert."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    domains = [torch.distributions.Dirichlet(torch.full((VOCAB,), 0.1)).sample((VOCAB,)) for _ in range(n_domains)]
    noise = torch.distributions.Dirichlet(torch.full((VOCAB,), 0.1)).sample((VOCAB,))
    new_domain = 0.6 * domains[0] + 0.3 * domains[1] + 0.1 * noise
    data = [sample(t, 1000, g) for t in domains]
    seed_lm = Bigram()
    train(seed_lm, torch.cat(data), seed_steps, g)
    experts = []
    for d in data:
        expert = Bigram()
        expert.load_state_dict(seed_lm.state_dict())
        train(expert, d, expert_steps, g)
        experts.append({k: v.detach().clone() for k, v in expert.state_dict().items()})
    new_train, new_test = sample(new_domain, 400, g), sample(new_domain, 400, g)
    probe = sample(new_domain, 16, g)[:, :PROBE_LENGTH]
    with torch.no_grad():
        loglik = torch.stack([-nll(seed_lm, e, probe) for e in experts])
    posterior = domain_posterior(loglik)
    weights = top_k_weights(posterior, 2)
    inits = {
        "posterior": weighted_average(experts, weights),
        "uniform": weighted_average(experts),
        "seed": {k: v.detach().clone() for k, v in seed_lm.state_dict().items()},
    }
    result: dict[str, Any] = {"seed": seed, "posterior_weights": weights, "step0": {}, "trained": {}}
    for name, state in inits.items():
        model = Bigram()
        model.load_state_dict(state)
        result["step0"][name] = perplexity(model, None, new_test)
        train(model, new_train, new_steps, torch.Generator().manual_seed(seed + 99))
        result["trained"][name] = perplexity(model, None, new_test)
    result["true_entropy_ppl"] = math.exp(
        float(-(new_domain * new_domain.clamp_min(1e-12).log()).sum(-1).mean())
    )  # perplexity of the true chain (uniform start states), a floor
    return result


def main() -> None:
    """Run every seed and write the report."""
    opts = benchmark_args(__doc__, default_out="btm_claim.json", seeds=10, quick_seeds=3)
    seeds = opts.seed_list
    seed_steps, expert_steps, new_steps = 300, 60, 10
    n_domains = 4 if opts.quick else 6
    start = time.perf_counter()
    runs = [one_seed(s, n_domains, seed_steps, expert_steps, new_steps) for s in seeds]
    post = mean([r["trained"]["posterior"] for r in runs])
    seed_ppl = mean([r["trained"]["seed"] for r in runs])
    write_result(
        opts.out,
        {
            "branch_posterior_ppl": post,
            "branch_seed_ppl": seed_ppl,
            "ppl_ratio_vs_seed": post / seed_ppl,
        },
        details={
            "branch_uniform_ppl": mean([r["trained"]["uniform"] for r in runs]),
            "step0_ppl": {k: mean([r["step0"][k] for r in runs]) for k in ("posterior", "uniform", "seed")},
            "posterior_wins_vs_seed": sum(r["trained"]["posterior"] < r["trained"]["seed"] for r in runs),
            "posterior_wins_vs_uniform": sum(r["trained"]["posterior"] < r["trained"]["uniform"] for r in runs),
            "domains": n_domains,
            "seed_steps": seed_steps,
            "expert_steps": expert_steps,
            "new_domain_steps": new_steps,
            "seeds": len(runs),
            "runs": runs,
            "wall_s": round(time.perf_counter() - start, 2),
        },
    )


if __name__ == "__main__":
    main()
