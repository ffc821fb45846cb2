"""One interface over where weights live: in-memory modules and state dicts, safetensors files, and Hugging Face
model folders (single file or sharded with ``model.safetensors.index.json``).

Every source is a :class:`TensorSource`: its tensor names, each tensor's dtype and shape, and ``read(name)`` which
loads just that tensor. Algorithms written against it work the same on a module in memory and on a 100 GB folder,
reading one tensor at a time. :class:`CheckpointWriter` is the matching sink: it writes a single file or a sharded
folder (with the index, and the config/tokenizer files copied from a reference folder) tensor by tensor.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from malot.errors import ToolError
from malot_weights.core.safetensors_io import SafetensorsReader, SafetensorsWriter, TensorInfo, dtype_name

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "CheckpointWriter",
    "FolderSource",
    "MemorySource",
    "SafetensorsSource",
    "TensorSource",
    "WeightsLike",
    "iter_tensors",
    "load_state_dict",
    "open_source",
    "save_state_dict",
]

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
#: Files copied from a reference model folder next to merged weights, so the output loads with ``from_pretrained``.
SIDE_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
)

WeightsLike = Any
"""What :func:`open_source` accepts: an ``nn.Module``, a mapping name -> tensor, a ``.safetensors`` path, a model
folder path, or an existing :class:`TensorSource`."""


@runtime_checkable
class TensorSource(Protocol):
    """Named tensors that can be listed, described and read one at a time."""

    def keys(self) -> list[str]:
        """Tensor names, in a stable order."""
        ...

    def info(self, name: str) -> TensorInfo:
        """Dtype code, shape and size of tensor ``name`` (without reading it)."""
        ...

    def read(self, name: str) -> torch.Tensor:
        """Tensor ``name`` (a tensor the caller may modify)."""
        ...

    def read_rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        """Rows ``start:stop`` of tensor ``name`` along its first dimension (reads only those)."""
        ...

    def close(self) -> None:
        """Release files."""
        ...


class MemorySource:
    """A state dict (or a module's parameters and buffers) in memory, as a :class:`TensorSource`.

    ``read`` returns a detached clone, so algorithms can modify what they read without touching the model.
    """

    def __init__(self, state: Mapping[str, torch.Tensor]) -> None:
        self._state = dict(state)

    @classmethod
    def from_module(cls, module: nn.Module) -> MemorySource:
        """The module's ``state_dict()`` (parameters and persistent buffers)."""
        return cls(module.state_dict())

    def keys(self) -> list[str]:
        """Names in the state dict's order."""
        return list(self._state)

    def info(self, name: str) -> TensorInfo:
        """Dtype code and shape."""
        t = self._get(name)
        return TensorInfo(name, dtype_name(t.dtype), tuple(t.shape))

    def read(self, name: str) -> torch.Tensor:
        """A detached CPU copy of tensor ``name``."""
        return self._get(name).detach().to("cpu").clone()

    def read_rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        """A copy of rows ``start:stop``."""
        return self._get(name)[start:stop].detach().to("cpu").clone()

    def _get(self, name: str) -> torch.Tensor:
        try:
            return self._state[name]
        except KeyError:
            raise ToolError(f"tensor {name!r} is not in the state dict") from None

    def close(self) -> None:
        """Nothing to release."""


class SafetensorsSource:
    """One ``.safetensors`` file as a :class:`TensorSource` (streaming reads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._reader = SafetensorsReader(self.path)

    @property
    def metadata(self) -> dict[str, str]:
        """The file's ``__metadata__`` strings."""
        return self._reader.metadata

    def keys(self) -> list[str]:
        """Names in file order."""
        return self._reader.keys()

    def info(self, name: str) -> TensorInfo:
        """Dtype code and shape."""
        return self._reader.info(name)

    def read(self, name: str) -> torch.Tensor:
        """Read one tensor from disk."""
        return self._reader.read(name)

    def read_rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        """Read rows ``start:stop`` of one tensor from disk."""
        return self._reader.read_rows(name, start, stop)

    def close(self) -> None:
        """Close the file."""
        self._reader.close()


class FolderSource:
    """A Hugging Face model folder: ``model.safetensors``, or shards listed by ``model.safetensors.index.json``, or
    every ``*.safetensors`` file in it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        index = self.path / INDEX_FILE
        files: list[Path]
        if index.is_file():
            weight_map: dict[str, str] = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            files = sorted({self.path / f for f in weight_map.values()})
        elif (self.path / SINGLE_FILE).is_file():
            files = [self.path / SINGLE_FILE]
        else:
            files = sorted(self.path.glob("*.safetensors"))
        if not files:
            hint = "save the model with save_pretrained(safe_serialization=True) or convert it to safetensors"
            if (self.path / "pytorch_model.bin").is_file():
                hint = "this folder has pytorch_model.bin only; " + hint
            raise ToolError(f"no safetensors weights in {self.path}", hint=hint)
        self._readers = [SafetensorsReader(f) for f in files]
        self._where: dict[str, SafetensorsReader] = {}
        for reader in self._readers:
            for key in reader.keys():  # noqa: SIM118 (a reader is not a dict)
                self._where.setdefault(key, reader)

    def keys(self) -> list[str]:
        """Names, shard by shard in file order."""
        return list(self._where)

    def info(self, name: str) -> TensorInfo:
        """Dtype code and shape."""
        return self._reader_of(name).info(name)

    def read(self, name: str) -> torch.Tensor:
        """Read one tensor from its shard."""
        return self._reader_of(name).read(name)

    def read_rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        """Read rows ``start:stop`` of one tensor from its shard."""
        return self._reader_of(name).read_rows(name, start, stop)

    def _reader_of(self, name: str) -> SafetensorsReader:
        try:
            return self._where[name]
        except KeyError:
            raise ToolError(f"tensor {name!r} is not in {self.path}") from None

    def close(self) -> None:
        """Close every shard."""
        for reader in self._readers:
            reader.close()


def open_source(weights: WeightsLike) -> TensorSource:
    """A :class:`TensorSource` for a module, a state dict, a ``.safetensors`` file or a model folder."""
    if isinstance(weights, TensorSource):
        return weights
    if isinstance(weights, str | Path):
        path = Path(weights)
        if path.is_dir():
            return FolderSource(path)
        if path.is_file():
            return SafetensorsSource(path)
        raise ToolError(f"weights path {path} does not exist", hint="pass a .safetensors file or a model folder")
    from torch import nn

    if isinstance(weights, nn.Module):
        return MemorySource.from_module(weights)
    if isinstance(weights, Mapping):
        return MemorySource(weights)
    raise ToolError(
        f"cannot read weights from a {type(weights).__name__}",
        hint="pass an nn.Module, a state dict, a .safetensors file or a model folder",
    )


class OptionalSource:
    """A file read as a :class:`TensorSource` where a tensor it lacks reads as ``None``.

    For side inputs that may cover only some tensors: a Fisher file without buffers, a task vector without the
    tensors it leaves unchanged.
    """

    def __init__(self, weights: WeightsLike) -> None:
        self._source = open_source(weights)
        self._names = set(self._source.keys())

    def keys(self) -> list[str]:
        """The tensors the file holds."""
        return self._source.keys()

    def info(self, name: str) -> Any:
        """Shape and dtype of a tensor the file holds."""
        return self._source.info(name)

    def read(self, name: str) -> Any:
        """The tensor, or ``None`` when the file lacks it."""
        return self._source.read(name) if name in self._names else None

    def read_rows(self, name: str, start: int, stop: int) -> Any:
        """Rows ``start:stop`` of the tensor, or ``None`` when the file lacks it."""
        return self._source.read_rows(name, start, stop) if name in self._names else None

    def close(self) -> None:
        """Close the file."""
        self._source.close()


class CheckpointWriter:
    """Writes a planned set of tensors to a ``.safetensors`` file or a (sharded) model folder, one at a time.

    ``output`` ending in ``.safetensors`` gives one file; anything else is a folder with ``model.safetensors`` or,
    beyond ``max_shard_bytes``, ``model-0000i-of-0000n.safetensors`` shards plus ``model.safetensors.index.json``.
    ``copy_side_files_from`` (a model folder) contributes config and tokenizer files. Tensors must be written in plan
    order; use as a context manager (an exception removes the partial output files).
    """

    def __init__(
        self,
        output: str | Path,
        plan: Iterable[TensorInfo],
        *,
        max_shard_bytes: int = 2 * 1024**3,
        metadata: Mapping[str, str] | None = None,
        copy_side_files_from: str | Path | None = None,
    ) -> None:
        self.output = Path(output)
        items = list(plan)
        meta = {"format": "pt", **(metadata or {})}
        self._shards: list[tuple[Path, list[TensorInfo]]] = []
        if self.output.suffix == ".safetensors":
            self._shards = [(self.output, items)]
        else:
            groups: list[list[TensorInfo]] = [[]]
            size = 0
            for item in items:
                if groups[-1] and size + item.nbytes > max_shard_bytes:
                    groups.append([])
                    size = 0
                groups[-1].append(item)
                size += item.nbytes
            self.output.mkdir(parents=True, exist_ok=True)
            if len(groups) == 1:
                self._shards = [(self.output / SINGLE_FILE, groups[0])]
            else:
                n = len(groups)
                self._shards = [
                    (self.output / f"model-{i + 1:05d}-of-{n:05d}.safetensors", g) for i, g in enumerate(groups)
                ]
            if copy_side_files_from is not None:
                ref = Path(copy_side_files_from)
                if ref.is_dir():
                    for side in SIDE_FILES:
                        if (ref / side).is_file():
                            shutil.copy2(ref / side, self.output / side)
        self._metadata = meta
        self._total = sum(i.nbytes for i in items)
        self._shard_index = -1
        self._writer: SafetensorsWriter | None = None
        self._written: list[Path] = []

    @property
    def files(self) -> list[Path]:
        """The safetensors files this writer produces."""
        return [path for path, _ in self._shards]

    def write(self, name: str, tensor: torch.Tensor) -> None:
        """Write the next planned tensor."""
        self._writer_for(name).write(name, tensor)

    def write_rows(self, name: str, rows: torch.Tensor) -> None:
        """Write the next rows of the next planned tensor (see :meth:`SafetensorsWriter.write_rows`)."""
        self._writer_for(name).write_rows(name, rows)

    def _writer_for(self, name: str) -> SafetensorsWriter:
        while self._writer is None or not self._writer.remaining:
            if self._writer is not None:
                self._writer.close()
            self._shard_index += 1
            if self._shard_index >= len(self._shards):
                raise ToolError(f"{self.output}: tensor {name!r} was not planned")
            path, items = self._shards[self._shard_index]
            self._writer = SafetensorsWriter(path, items, metadata=self._metadata)
            self._written.append(path)
        return self._writer

    def close(self) -> None:
        """Finish the last shard and write the index (for several shards)."""
        if self._writer is not None:
            self._writer.close()
        # planned shards never opened (empty plan tails) are still written so the index is complete
        for path, items in self._shards[self._shard_index + 1 :]:
            if items:
                raise ToolError(f"{self.output}: tensors of {path.name} were never written")
            SafetensorsWriter(path, [], metadata=self._metadata).close()
        if len(self._shards) > 1:
            weight_map = {item.name: path.name for path, items in self._shards for item in items}
            index = {"metadata": {"total_size": self._total}, "weight_map": weight_map}
            (self.output / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")

    def abort(self) -> None:
        """Remove what was written."""
        if self._writer is not None:
            self._writer.abort()
        for path in self._written:
            path.unlink(missing_ok=True)

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


def _shard_name(i: int, n: int) -> str:
    return f"model-{i + 1:05d}-of-{n:05d}.safetensors"


def save_state_dict(
    state: Mapping[str, torch.Tensor], output: str | Path, *, metadata: Mapping[str, str] | None = None
) -> list[Path]:
    """Write an in-memory state dict as a safetensors file or model folder (see :class:`CheckpointWriter`)."""
    plan = [TensorInfo(k, dtype_name(v.dtype), tuple(v.shape)) for k, v in state.items()]
    with CheckpointWriter(output, plan, metadata=metadata) as writer:
        for k, v in state.items():
            writer.write(k, v)
    return writer.files


def iter_tensors(source: TensorSource, names: Iterable[str] | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` pairs read one at a time."""
    for name in names if names is not None else source.keys():
        yield name, source.read(name)


def load_state_dict(weights: WeightsLike, names: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """Every tensor (or ``names``) of a module, state dict, file or folder, in memory (for small models)."""
    source = open_source(weights)
    try:
        return dict(iter_tensors(source, names))
    finally:
        if source is not weights:
            source.close()
