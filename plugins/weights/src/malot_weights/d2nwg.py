"""D2NWG: Diffusion-based Neural Network Weights Generation (Soro et al., ICLR 2025).

A collection of trained checkpoints (one per dataset) is turned into a generator of weights for a new dataset:

1. every checkpoint is flattened and cut into fixed-size **chunks**; a **VAE** learns to encode a chunk into a small
   latent and decode it back;
2. a checkpoint's latent is the sequence of its chunk latents; a **latent diffusion model** (DDPM, noise
   prediction) learns to generate these latents, **conditioned on the dataset** through a set encoder over
   ``(x, y)`` samples (DeepSets: a per-sample network, mean-pooled, then another network);
3. to generate weights for a new dataset, encode it, run the reverse diffusion from Gaussian noise (seeded, so
   sampling is reproducible), decode every chunk with the VAE and reassemble the state dict.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_weights.tool_io import load_weights, save_weights

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "D2nwgConfig",
    "D2nwgInput",
    "D2nwgOutput",
    "TrainingReport",
    "WeightGenerator",
    "WeightLayout",
    "d2nwg",
    "train_weight_generator",
]


@dataclass
class WeightLayout:
    """How a state dict is laid out as one flat vector: names, shapes and dtypes in order."""

    names: list[str]
    shapes: list[list[int]]

    @classmethod
    def of(cls, state: Mapping[str, torch.Tensor]) -> WeightLayout:
        """The layout of the floating-point tensors of ``state`` (sorted by name)."""
        names = sorted(n for n, t in state.items() if t.is_floating_point())
        return cls(names=names, shapes=[list(state[n].shape) for n in names])

    @property
    def size(self) -> int:
        """Number of scalars in the flat vector."""
        return sum(math.prod(s) for s in self.shapes)

    def flatten(self, state: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The flat float32 vector of ``state`` (which must match the layout)."""
        import torch

        parts = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            if name not in state or list(state[name].shape) != shape:
                raise ToolError(f"checkpoint does not match the layout at {name!r}", hint="use one architecture")
            parts.append(state[name].detach().to(torch.float32).reshape(-1))
        return torch.cat(parts)

    def unflatten(self, vector: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a flat vector back into named tensors."""
        out: dict[str, torch.Tensor] = {}
        offset = 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            count = math.prod(shape)
            out[name] = vector[offset : offset + count].reshape(shape).clone()
            offset += count
        return out


@dataclass
class D2nwgConfig:
    """Sizes and training lengths of the weight generator."""

    chunk_size: int = 64
    latent_dim: int = 8
    vae_hidden: int = 128
    vae_steps: int = 500
    vae_lr: float = 3e-3
    kl_weight: float = 1e-4
    set_hidden: int = 64
    condition_dim: int = 16
    denoiser_hidden: int = 256
    diffusion_steps: int = 800
    diffusion_lr: float = 2e-3
    timesteps: int = 100
    beta_start: float = 1e-4
    beta_end: float = 0.05
    seed: int = 0


def _mlp(sizes: Sequence[int]) -> nn.Module:
    from torch import nn

    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


def _time_features(t: torch.Tensor, dim: int = 16) -> torch.Tensor:
    import torch

    freqs = torch.exp(-math.log(1000.0) * torch.arange(dim // 2, dtype=torch.float32) / (dim // 2))
    angles = t.float().reshape(-1, 1) * freqs.reshape(1, -1)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class WeightGenerator:
    """The trained parts: chunk VAE, dataset set-encoder and conditional latent denoiser, with the DDPM schedule."""

    def __init__(self, config: D2nwgConfig, layout: WeightLayout, data_dim: int) -> None:
        import torch

        self.config = config
        self.layout = layout
        self.data_dim = data_dim
        self.n_chunks = -(-layout.size // config.chunk_size)
        latent_size = self.n_chunks * config.latent_dim
        torch.manual_seed(config.seed)
        c = config
        self.encoder = _mlp([c.chunk_size, c.vae_hidden, c.vae_hidden, 2 * c.latent_dim])
        self.decoder = _mlp([c.latent_dim, c.vae_hidden, c.vae_hidden, c.chunk_size])
        self.set_phi = _mlp([data_dim, c.set_hidden, c.set_hidden])
        self.set_rho = _mlp([c.set_hidden, c.set_hidden, c.condition_dim])
        self.denoiser = _mlp([latent_size + 16 + c.condition_dim, c.denoiser_hidden, c.denoiser_hidden, latent_size])
        betas = torch.linspace(c.beta_start, c.beta_end, c.timesteps, dtype=torch.float64)
        self.betas = betas.float()
        self.alphas = (1 - betas).float()
        self.alpha_bars = torch.cumprod(1 - betas, 0).float()
        self.chunk_mean = torch.zeros(c.chunk_size)
        self.chunk_std = torch.ones(c.chunk_size)
        self.latent_mean = torch.zeros(latent_size)
        self.latent_std = torch.ones(latent_size)

    def modules(self) -> dict[str, nn.Module]:
        """The trainable networks by name."""
        return {
            "encoder": self.encoder,
            "decoder": self.decoder,
            "set_phi": self.set_phi,
            "set_rho": self.set_rho,
            "denoiser": self.denoiser,
        }

    # --- chunks and the VAE -----------------------------------------------------------------------------------

    def chunks(self, state: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``(n_chunks, chunk_size)``: the flat checkpoint, zero-padded, cut into chunks."""
        import torch.nn.functional as F

        flat = self.layout.flatten(state)
        padded = F.pad(flat, (0, self.n_chunks * self.config.chunk_size - flat.numel()))
        return padded.reshape(self.n_chunks, self.config.chunk_size)

    def encode(self, chunks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """VAE posterior ``(mean, log-variance)`` of normalised chunks."""
        stats = self.encoder((chunks - self.chunk_mean) / self.chunk_std)
        mean, logvar = stats.chunk(2, dim=-1)
        return mean, logvar.clamp(-12, 6)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Chunks decoded from latents (un-normalised back to weight scale)."""
        decoded: torch.Tensor = self.decoder(latents) * self.chunk_std + self.chunk_mean
        return decoded

    def reconstruct(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Encode and decode a checkpoint through the VAE (posterior means), as a state dict."""
        import torch

        with torch.no_grad():
            mean, _ = self.encode(self.chunks(state))
            return self._assemble(self.decode(mean))

    def _assemble(self, chunks: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.layout.unflatten(chunks.reshape(-1)[: self.layout.size])

    # --- conditioning and diffusion -----------------------------------------------------------------------------

    def condition(self, data: torch.Tensor) -> torch.Tensor:
        """Dataset embedding of ``(n, data_dim)`` samples (DeepSets: per-sample MLP, mean pool, MLP)."""
        pooled = self.set_phi(data).mean(0, keepdim=True)
        out: torch.Tensor = self.set_rho(pooled)
        return out

    def predict_noise(self, z_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The denoiser's noise estimate for latents ``z_t`` at steps ``t`` under dataset embeddings ``cond``."""
        import torch

        out: torch.Tensor = self.denoiser(torch.cat([z_t, _time_features(t), cond.expand(z_t.shape[0], -1)], dim=1))
        return out

    def sample(self, data: torch.Tensor, *, num_samples: int = 1, seed: int = 0) -> list[dict[str, torch.Tensor]]:
        """Generate ``num_samples`` checkpoints for dataset ``data`` by ancestral DDPM sampling (deterministic in
        ``seed``)."""
        import torch

        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            cond = self.condition(data.float())
            z = torch.randn(num_samples, self.latent_mean.numel(), generator=generator)
            for step in reversed(range(self.config.timesteps)):
                t = torch.full((num_samples,), step, dtype=torch.int64)
                eps = self.predict_noise(z, t, cond)
                alpha, alpha_bar, beta = self.alphas[step], self.alpha_bars[step], self.betas[step]
                z = (z - beta / torch.sqrt(1 - alpha_bar) * eps) / torch.sqrt(alpha)
                if step > 0:
                    variance = beta * (1 - self.alpha_bars[step - 1]) / (1 - alpha_bar)
                    z = z + torch.sqrt(variance) * torch.randn(z.shape, generator=generator)
            latents = z * self.latent_std + self.latent_mean
            return [
                self._assemble(self.decode(latent.reshape(self.n_chunks, self.config.latent_dim))) for latent in latents
            ]

    # --- persistence -----------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the generator (all networks, normalisers and config) to one safetensors file."""
        tensors: dict[str, torch.Tensor] = {}
        for prefix, module in self.modules().items():
            tensors.update({f"{prefix}.{k}": v for k, v in module.state_dict().items()})
        for key in ("chunk_mean", "chunk_std", "latent_mean", "latent_std"):
            tensors[f"norm.{key}"] = getattr(self, key)
        meta = {
            "format": "malot-d2nwg",
            "config": json.dumps(asdict(self.config)),
            "layout": json.dumps(asdict(self.layout)),
            "data_dim": str(self.data_dim),
        }
        return save_weights(tensors, path, metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> WeightGenerator:
        """Read a generator written by :meth:`save`."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        if meta.get("format") != "malot-d2nwg":
            raise ToolError(f"{path} is not a D2NWG generator", hint="train one with the d2nwg tool")
        gen = cls(
            D2nwgConfig(**json.loads(meta["config"])), WeightLayout(**json.loads(meta["layout"])), int(meta["data_dim"])
        )
        tensors = load_weights(path)
        for prefix, module in gen.modules().items():
            module.load_state_dict({k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")})
        for key in ("chunk_mean", "chunk_std", "latent_mean", "latent_std"):
            setattr(gen, key, tensors[f"norm.{key}"])
        return gen


@dataclass
class TrainingReport:
    """Loss curves and the VAE's reconstruction quality on its training checkpoints."""

    vae_losses: list[float]
    diffusion_losses: list[float]
    reconstruction_error: float = 0.0  # relative L2 error over all training checkpoints


def train_weight_generator(
    checkpoints: Sequence[Mapping[str, torch.Tensor]],
    datasets: Sequence[torch.Tensor],
    config: D2nwgConfig | None = None,
) -> tuple[WeightGenerator, TrainingReport]:
    """Train the chunk VAE, then the dataset-conditioned latent DDPM, on ``(dataset, checkpoint)`` pairs.

    ``datasets[i]`` is a ``(n_i, data_dim)`` tensor of samples (e.g. features with the label appended) of the data
    checkpoint ``i`` was trained on.
    """
    import torch

    cfg = config or D2nwgConfig()
    if not checkpoints or len(checkpoints) != len(datasets):
        raise ToolError(f"need one dataset per checkpoint (got {len(checkpoints)} and {len(datasets)})")
    layout = WeightLayout.of(checkpoints[0])
    gen = WeightGenerator(cfg, layout, int(datasets[0].shape[1]))
    chunks = torch.stack([gen.chunks(c) for c in checkpoints])  # (m, n_chunks, chunk)
    flat_chunks = chunks.reshape(-1, cfg.chunk_size)
    gen.chunk_mean = flat_chunks.mean(0)
    gen.chunk_std = flat_chunks.std(0).clamp_min(1e-6) if flat_chunks.shape[0] > 1 else torch.ones(cfg.chunk_size)
    generator = torch.Generator().manual_seed(cfg.seed)

    vae_params = [*gen.encoder.parameters(), *gen.decoder.parameters()]
    optimizer = torch.optim.Adam(vae_params, lr=cfg.vae_lr)
    vae_losses: list[float] = []
    for _ in range(cfg.vae_steps):
        mean, logvar = gen.encode(flat_chunks)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=generator)
        recon = gen.decoder(z)
        target = (flat_chunks - gen.chunk_mean) / gen.chunk_std
        kl = -0.5 * torch.mean(1 + logvar - mean**2 - logvar.exp())
        loss = torch.mean((recon - target) ** 2) + cfg.kl_weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        vae_losses.append(float(loss.detach()))

    with torch.no_grad():
        latents = torch.stack([gen.encode(c)[0].reshape(-1) for c in chunks])  # (m, latent_size)
        gen.latent_mean = latents.mean(0)
        gen.latent_std = latents.std(0).clamp_min(1e-3) if latents.shape[0] > 1 else torch.ones(latents.shape[1])
        targets = (latents - gen.latent_mean) / gen.latent_std
        originals = torch.stack([layout.flatten(c) for c in checkpoints])
        rebuilt = torch.stack([layout.flatten(gen.reconstruct(c)) for c in checkpoints])
        recon_error = float((rebuilt - originals).norm() / originals.norm().clamp_min(1e-12))

    diffusion_params = [*gen.set_phi.parameters(), *gen.set_rho.parameters(), *gen.denoiser.parameters()]
    optimizer = torch.optim.Adam(diffusion_params, lr=cfg.diffusion_lr)
    diffusion_losses: list[float] = []
    data = [d.float() for d in datasets]
    for _ in range(cfg.diffusion_steps):
        t = torch.randint(cfg.timesteps, (len(checkpoints),), generator=generator)
        noise = torch.randn(targets.shape, generator=generator)
        alpha_bar = gen.alpha_bars[t].reshape(-1, 1)
        z_t = torch.sqrt(alpha_bar) * targets + torch.sqrt(1 - alpha_bar) * noise
        cond = torch.cat([gen.condition(d) for d in data])
        pred = gen.denoiser(torch.cat([z_t, _time_features(t), cond], dim=1))
        loss = torch.mean((pred - noise) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        diffusion_losses.append(float(loss.detach()))
    return gen, TrainingReport(vae_losses, diffusion_losses, recon_error)


_PAPER = "Diffusion-Based Neural Network Weights Generation (Soro et al., ICLR 2025)"


class D2nwgInput(BaseModel):
    """Arguments of the ``d2nwg`` tool."""

    out: str = Field(description="output folder for the generated checkpoints (sample_<i>.safetensors)")
    target_dataset: str = Field(description="safetensors file with tensor 'data' (n × d): the dataset to generate for")
    checkpoints: list[str] = Field(default_factory=list, description="training checkpoints (one architecture)")
    datasets: list[str] = Field(default_factory=list, description="one 'data' safetensors per training checkpoint")
    generator: str | None = Field(default=None, description="a generator saved earlier (skips training)")
    save_generator: str | None = Field(default=None, description="where to save the trained generator")
    num_samples: int = Field(default=1, ge=1)
    seed: int = 0
    chunk_size: int = Field(default=64, gt=0)
    latent_dim: int = Field(default=8, gt=0)
    vae_steps: int = Field(default=500, ge=0)
    diffusion_steps: int = Field(default=800, ge=0)
    timesteps: int = Field(default=100, gt=1)


class D2nwgOutput(BaseModel):
    """Result of the ``d2nwg`` tool."""

    samples: list[str]
    generator: str | None
    reconstruction_error: float | None = Field(description="VAE relative L2 error on its training checkpoints")
    vae_loss_last: float | None
    diffusion_loss_last: float | None


def _dataset(path: str) -> torch.Tensor:
    tensors = load_weights(path)
    if "data" not in tensors:
        raise ToolError(f"{path} has no tensor named 'data'", hint="save the samples (n × d) under the key 'data'")
    return tensors["data"]


@tool(name="d2nwg", family="weights", paper=_PAPER, tags=("generation", "diffusion", "vae"), heavy=True)
def d2nwg(args: D2nwgInput) -> D2nwgOutput:
    """Generate weights for a dataset with a chunk VAE and a dataset-conditioned latent diffusion model (D2NWG).

    Trains the generator on (dataset, checkpoint) pairs, or loads a saved one, then samples ``num_samples``
    checkpoints for ``target_dataset`` (reproducible with ``seed``).
    """
    report: TrainingReport | None = None
    if args.generator is not None:
        gen = WeightGenerator.load(args.generator)
    else:
        if not args.checkpoints:
            raise ToolError("give training 'checkpoints' and 'datasets', or a saved 'generator'")
        config = D2nwgConfig(
            chunk_size=args.chunk_size,
            latent_dim=args.latent_dim,
            vae_steps=args.vae_steps,
            diffusion_steps=args.diffusion_steps,
            timesteps=args.timesteps,
            seed=args.seed,
        )
        gen, report = train_weight_generator(
            [load_weights(p) for p in args.checkpoints], [_dataset(p) for p in args.datasets], config
        )
    saved = str(gen.save(args.save_generator)) if args.save_generator is not None else None
    out = Path(args.out)
    samples = gen.sample(_dataset(args.target_dataset), num_samples=args.num_samples, seed=args.seed)
    paths = [str(save_weights(s, out / f"sample_{i}.safetensors")) for i, s in enumerate(samples)]
    return D2nwgOutput(
        samples=paths,
        generator=saved,
        reconstruction_error=report.reconstruction_error if report else None,
        vae_loss_last=report.vae_losses[-1] if report and report.vae_losses else None,
        diffusion_loss_last=report.diffusion_losses[-1] if report and report.diffusion_losses else None,
    )
