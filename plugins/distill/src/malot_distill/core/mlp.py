"""The small classifier format the distill tools read and write: an MLP saved as one safetensors file.

An :class:`MLP` is ``body`` (Linear+ReLU blocks, the *features*) followed by a linear ``head`` (the logits). The
file stores the weights and, in its metadata, the layer sizes, so a tool can rebuild the model from the file alone.
Tools that work on Hugging Face causal LMs take a model folder instead (see :mod:`malot_distill.core.causal_lm`).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["FORMAT", "build_mlp", "load_mlp", "save_mlp"]

FORMAT = "malot-distill-mlp"


def build_mlp(sizes: list[int], seed: int | None = None) -> nn.Module:
    """An MLP with layer sizes ``[input, hidden..., classes]`` (at least one hidden layer); seeded if ``seed``."""
    import torch
    from torch import nn

    if len(sizes) < 3 or any(s < 1 for s in sizes):
        raise ToolError(f"MLP sizes {sizes} need an input, at least one hidden layer and an output, all positive")

    class MLP(nn.Module):
        """``head(body(x))``; ``features(x) = body(x)``."""

        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            for a, b in itertools.pairwise(sizes[:-1]):
                layers += [nn.Linear(a, b), nn.ReLU()]
            self.body = nn.Sequential(*layers)
            self.head = nn.Linear(sizes[-2], sizes[-1])
            self.sizes = list(sizes)

        def features(self, x: torch.Tensor) -> torch.Tensor:
            """The penultimate representation."""
            out: torch.Tensor = self.body(x)
            return out

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """The logits."""
            out: torch.Tensor = self.head(self.body(x))
            return out

    if seed is not None:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return MLP()
    return MLP()


def save_mlp(model: nn.Module, path: str | Path) -> Path:
    """Write an MLP built by :func:`build_mlp` to one safetensors file (sizes in the metadata)."""
    from safetensors.torch import save_file

    sizes = getattr(model, "sizes", None)
    if not isinstance(sizes, list):
        raise ToolError("only models built by malot_distill.core.mlp.build_mlp can be saved in this format")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(out), metadata={"format": FORMAT, "sizes": json.dumps(sizes)})
    return out


def load_mlp(path: str | Path) -> nn.Module:
    """Read an MLP written by :func:`save_mlp`."""
    from safetensors import safe_open

    file = Path(path)
    if not file.is_file():
        raise ToolError(f"model file {file} does not exist", hint="pass a .safetensors file written by a distill tool")
    with safe_open(str(file), framework="pt") as handle:
        meta = handle.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ToolError(
                f"{file} is not a distill MLP file",
                hint="create one with malot_distill.core.mlp.save_mlp (or pass a Hugging Face folder where allowed)",
            )
        state = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    model = build_mlp([int(s) for s in json.loads(meta["sizes"])])
    model.load_state_dict(state)
    return model
