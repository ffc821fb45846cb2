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

    Streams tensor by tensor (one tensor in memory at a time) through the core's :class:`CheckpointWriter`; the
    transform must keep each tensor's dtype and shape. ``out`` ending in ``.safetensors`` is one file, anything else
    a model folder (sharded like the writer decides), which for a folder ``source`` also receives its config,
    tokenizer and other side files, so the result loads like the original.
    """
    from malot_weights.core.checkpoint import CheckpointWriter, open_source

    src_path = Path(source)
    safetensors_files(src_path)  # a clear error for a missing path or a folder without weights
    reader = open_source(src_path)
    try:
        names = reader.keys()
        plan = [reader.info(name) for name in names]
        folder_source = src_path if src_path.is_dir() else None
        with CheckpointWriter(out, plan, copy_side_files_from=folder_source) as writer:
            for name, info in zip(names, plan, strict=True):
                tensor = transform(name, reader.read(name))
                if tuple(tensor.shape) != tuple(info.shape):
                    raise ToolError(f"rewriting {name!r} changed its shape", hint="this is a bug in the tool")
                writer.write(name, tensor)
            files = writer.files
    finally:
        reader.close()
    dst = Path(out)
    if folder_source is not None and dst.is_dir():
        for extra in folder_source.iterdir():
            skip = extra.suffix == ".safetensors" or extra.name.endswith(".safetensors.index.json")
            if extra.is_file() and not skip and not (dst / extra.name).exists():
                shutil.copy2(extra, dst / extra.name)
    return files
