"""File handling shared by the tools of this package: safetensors files and Hugging Face model folders.

A *weights path* is either one ``.safetensors`` file or a model folder holding one or more ``*.safetensors``
shards. Tools read whole state dicts from small checkpoints and, where they only rewrite tensors, go shard by shard
so at most one shard is in memory at a time.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch

__all__ = ["load_weights", "rewrite_weights", "safetensors_files", "save_weights"]


def safetensors_files(path: str | Path) -> list[Path]:
    """The safetensors files behind a weights path (a file, or every shard in a model folder)."""
    source = Path(path)
    if source.is_file():
        return [source]
    if source.is_dir():
        shards = sorted(source.glob("*.safetensors"))
        if shards:
            return shards
        raise ToolError(f"{source} holds no .safetensors files", hint="save the model with safe_serialization=True")
    raise ToolError(f"weights path {source} does not exist", hint="pass a .safetensors file or a model folder")


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Load every tensor of a weights path into memory (for small checkpoints)."""
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for file in safetensors_files(path):
        tensors.update(load_file(str(file)))
    return tensors


def save_weights(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write tensors to one safetensors file (parent folders are created)."""
    from safetensors.torch import save_file

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(out), metadata=metadata)
    return out


def rewrite_weights(
    source: str | Path, out: str | Path, transform: Callable[[str, torch.Tensor], torch.Tensor]
) -> list[Path]:
    """Apply ``transform(name, tensor)`` to every tensor of ``source`` and write the result to ``out``.

    A file maps to a file; a model folder maps to a folder with the same shard names, and its other files (config,
    tokenizer) copied, so the result loads like the original. One shard is in memory at a time.
    """
    from safetensors import safe_open

    src = Path(source)
    dst = Path(out)
    files = safetensors_files(src)
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        for extra in src.iterdir():
            if extra.is_file() and extra.suffix != ".safetensors":
                shutil.copy2(extra, dst / extra.name)
    written: list[Path] = []
    for file in files:
        target = dst / file.name if src.is_dir() else dst
        with safe_open(str(file), framework="pt") as handle:
            metadata = handle.metadata()
            tensors = {name: transform(name, handle.get_tensor(name)) for name in handle.keys()}  # noqa: SIM118
        written.append(save_weights(tensors, target, metadata))
    return written
