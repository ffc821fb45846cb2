"""D2NWG claim: weights generated for an unseen dataset by the dataset-conditioned latent diffusion model perform
well without training: far better than the shared initialisation, and better than the zoo's average weights.

Synthetic model zoo: tasks are regressions ``y = tanh(3·⟨x, u_θ⟩)`` with direction ``u_θ`` at angle θ. A small MLP
(2-16-1) is fine-tuned from one shared initialisation on each of 24 training angles; 8 angles in between are held
out. D2NWG (chunk VAE + DDPM over the chunk latents, conditioned on a set encoding of 64 ``(x, y)`` samples) is
trained on the 24 (dataset, checkpoint) pairs and samples weights for each held-out dataset.

    python plugins/weights/benchmarks/d2nwg_generation.py --quick --out d2nwg_generation.json

Top-level figures (test MSE on the held-out tasks, means): ``generated_loss_ratio_vs_init`` and
``generated_loss_ratio_vs_zoo_mean`` (generated / baseline; below 1 reproduces the claim),
``generated_loss_ratio_vs_trained`` (generated / a model trained on the held-out task: 1 is perfect),
``vae_reconstruction_error`` (relative L2 on the training checkpoints).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any


def main() -> None:
    """Run the benchmark and write one JSON object."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (under a minute on 2 cores)")
    parser.add_argument("--out", default="d2nwg_generation.json")
    args = parser.parse_args()
    import torch
    from malot_weights.d2nwg import D2nwgConfig, train_weight_generator

    torch.set_num_threads(1)
    start = time.perf_counter()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    init = {k: v.clone() for k, v in net.state_dict().items()}

    def task(angle: float, seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
        u = torch.tensor([math.cos(angle), math.sin(angle)])
        return x, torch.tanh(3 * x @ u).unsqueeze(1)

    def train(angle: float, seed: int) -> dict[str, torch.Tensor]:
        net.load_state_dict(init)
        x, y = task(angle, seed, 256)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(300):
            loss = torch.nn.functional.mse_loss(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return {k: v.detach().clone() for k, v in net.state_dict().items()}

    def mse(state: dict[str, torch.Tensor], angle: float) -> float:
        x, y = task(angle, 999, 1024)
        with torch.no_grad():
            return float(torch.nn.functional.mse_loss(torch.func.functional_call(net, state, (x,)), y))

    n_train, n_test = 24, 8
    train_angles = [2 * math.pi * i / n_train for i in range(n_train)]
    test_angles = [2 * math.pi * (i * 3 + 1.5) / n_train for i in range(n_test)]
    checkpoints = [train(a, i) for i, a in enumerate(train_angles)]
    datasets = [torch.cat(task(a, 100 + i, 64), dim=1) for i, a in enumerate(train_angles)]
    config = D2nwgConfig(
        chunk_size=16,
        latent_dim=4,
        vae_hidden=64,
        vae_steps=1000 if args.quick else 4000,
        denoiser_hidden=128,
        diffusion_steps=2000 if args.quick else 8000,
        timesteps=100,
        seed=0,
    )
    generator, report = train_weight_generator(checkpoints, datasets, config)
    zoo_mean = {k: torch.stack([c[k] for c in checkpoints]).mean(0) for k in init}
    rows = []
    for i, angle in enumerate(test_angles):
        data = torch.cat(task(angle, 500 + i, 64), dim=1)
        samples = generator.sample(data, num_samples=4, seed=i)
        rows.append(
            {
                "angle": angle,
                "generated": statistics.mean(mse(s, angle) for s in samples),
                "init": mse(init, angle),
                "zoo_mean": mse(zoo_mean, angle),
                "trained": mse(train(angle, 700 + i), angle),
            }
        )

    def mean(key: str) -> float:
        return statistics.mean(r[key] for r in rows)

    result: dict[str, Any] = {
        "generated_loss_ratio_vs_init": mean("generated") / mean("init"),
        "generated_loss_ratio_vs_zoo_mean": mean("generated") / mean("zoo_mean"),
        "generated_loss_ratio_vs_trained": mean("generated") / mean("trained"),
        "vae_reconstruction_error": report.reconstruction_error,
        "details": {
            "quick": args.quick,
            "held_out": rows,
            "mean_loss": {k: mean(k) for k in ("generated", "init", "zoo_mean", "trained")},
            "vae_loss_last": report.vae_losses[-1],
            "diffusion_loss_last": report.diffusion_losses[-1],
            "config": config.__dict__,
            "seconds": time.perf_counter() - start,
        },
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "details"}, indent=2))
    print(json.dumps(result["details"]["mean_loss"]))


if __name__ == "__main__":
    main()
