"""D2NWG: chunking, VAE reconstruction, seeded DDPM sampling and the tool, on a zoo of tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from malot_weights.d2nwg import D2nwgConfig, D2nwgInput, WeightLayout, d2nwg, train_weight_generator  # noqa: E402
from malot_weights.tool_io import save_weights  # noqa: E402


def _zoo(n: int) -> tuple[list[dict[str, torch.Tensor]], list[torch.Tensor]]:
    """Tiny models fine-tuned from one init on rotated linear tasks; datasets are (x, y) samples."""
    torch.manual_seed(0)
    init = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).state_dict()
    checkpoints, datasets = [], []
    for i in range(n):
        angle = torch.tensor(6.28 * i / n)
        x = torch.randn(32, 2, generator=torch.Generator().manual_seed(i))
        y = x @ torch.stack([angle.cos(), angle.sin()]).reshape(2, 1)
        checkpoints.append({k: v + 0.1 * (i + 1) * torch.ones_like(v) * angle.cos() for k, v in init.items()})
        datasets.append(torch.cat([x, y], dim=1))
    return checkpoints, datasets


CONFIG = D2nwgConfig(
    chunk_size=8, latent_dim=4, vae_hidden=32, vae_steps=300, denoiser_hidden=32, diffusion_steps=60, timesteps=20
)


def test_layout_round_trip_and_chunk_shapes() -> None:
    checkpoints, datasets = _zoo(3)
    layout = WeightLayout.of(checkpoints[0])
    assert layout.size == 17
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            layout.unflatten(layout.flatten(checkpoints[0])).values(),
            [checkpoints[0][n] for n in layout.names],
            strict=True,
        )
    )
    gen, _ = train_weight_generator(
        checkpoints, datasets, D2nwgConfig(chunk_size=8, vae_steps=1, diffusion_steps=1, timesteps=5)
    )
    assert gen.chunks(checkpoints[0]).shape == (3, 8)  # 17 weights, zero-padded to 3 chunks of 8
    assert gen.latent_mean.shape == (3 * 8,)


def test_vae_reconstructs_its_training_chunks_and_sampling_is_seeded(tmp_path: Path) -> None:
    checkpoints, datasets = _zoo(6)
    gen, report = train_weight_generator(checkpoints, datasets, CONFIG)
    assert report.vae_losses[-1] < report.vae_losses[0] / 5
    assert report.reconstruction_error < 0.1
    a = gen.sample(datasets[0], num_samples=2, seed=3)
    b = gen.sample(datasets[0], num_samples=2, seed=3)
    c = gen.sample(datasets[0], num_samples=2, seed=4)
    assert all(torch.equal(a[i][n], b[i][n]) for i in range(2) for n in a[0])
    assert not torch.equal(a[0]["0.weight"], c[0]["0.weight"])
    assert {n: list(t.shape) for n, t in a[0].items()} == {n: list(t.shape) for n, t in checkpoints[0].items()}
    # a saved generator samples exactly what the trained one does
    from malot_weights.d2nwg import WeightGenerator

    loaded = WeightGenerator.load(gen.save(tmp_path / "gen.safetensors"))
    d = loaded.sample(datasets[0], num_samples=2, seed=3)
    assert all(torch.equal(a[i][n], d[i][n]) for i in range(2) for n in a[0])


def test_d2nwg_tool_trains_saves_and_generates(tmp_path: Path) -> None:
    checkpoints, datasets = _zoo(3)
    ck = [str(save_weights(c, tmp_path / f"c{i}.safetensors")) for i, c in enumerate(checkpoints)]
    ds = [str(save_weights({"data": d}, tmp_path / f"d{i}.safetensors")) for i, d in enumerate(datasets)]
    result = d2nwg(
        D2nwgInput(
            out=str(tmp_path / "gen"),
            target_dataset=ds[0],
            checkpoints=ck,
            datasets=ds,
            save_generator=str(tmp_path / "g.safetensors"),
            num_samples=2,
            chunk_size=8,
            vae_steps=20,
            diffusion_steps=5,
            timesteps=5,
        )
    )
    assert len(result.samples) == 2 and result.generator is not None
    again = d2nwg(
        D2nwgInput(out=str(tmp_path / "gen2"), target_dataset=ds[0], generator=result.generator, num_samples=2)
    )
    from malot_weights.tool_io import load_weights

    assert all(
        torch.equal(load_weights(p)[k], load_weights(q)[k])
        for p, q in zip(result.samples, again.samples, strict=True)
        for k in checkpoints[0]
    )
