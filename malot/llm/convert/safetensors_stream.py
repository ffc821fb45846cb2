"""A safetensors writer that takes tensors one at a time, so a converted model is never held in memory whole.

The `safetensors format <https://huggingface.co/docs/safetensors>`_ is an 8-byte little-endian header length, a JSON
header (per tensor: dtype, shape and byte offsets into the data section, plus optional ``__metadata__`` strings)
and the raw data. Because the header comes first, :class:`StreamingSafetensorsWriter` is given every tensor's name,
dtype and shape up front and then writes the data in that order. Reading uses the ``safetensors`` library's
``safe_open`` (one tensor at a time).
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

from malot.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["PlannedTensor", "StreamingSafetensorsWriter", "safetensors_dtype", "sha256_file", "torch_dtype"]

_CODES = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}
_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def safetensors_dtype(dtype: torch.dtype) -> str:
    """The safetensors code of a torch dtype (``torch.float16`` -> ``"F16"``)."""
    code = _CODES.get(str(dtype).removeprefix("torch."))
    if code is None:
        raise ConfigError(f"tensors of dtype {dtype} cannot be written to safetensors here")
    return code


def torch_dtype(code: str) -> torch.dtype:
    """The torch dtype of a safetensors code (``"BF16"`` -> ``torch.bfloat16``)."""
    import torch

    for name, known in _CODES.items():
        if known == code:
            dtype: torch.dtype = getattr(torch, name)
            return dtype
    raise ConfigError(f"unknown safetensors dtype {code!r}")


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """The SHA-256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class PlannedTensor:
    """One tensor of the file to write: its name, safetensors dtype code and shape."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        """Size of its data in bytes."""
        n = _SIZES[self.dtype]
        for d in self.shape:
            n *= d
        return n


class StreamingSafetensorsWriter:
    """Write ``plan``'s tensors to ``path`` in plan order; :meth:`close` fails if any planned tensor is missing.

    Used as a context manager, an exception inside the block deletes the partial file.
    """

    def __init__(self, path: Path, plan: Sequence[PlannedTensor], *, metadata: Mapping[str, str] | None = None):
        self.path = path
        self.plan = list(plan)
        header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
        offset = 0
        for item in self.plan:
            header[item.name] = {
                "dtype": item.dtype,
                "shape": list(item.shape),
                "data_offsets": [offset, offset + item.nbytes],
            }
            offset += item.nbytes
        raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
        raw += b" " * (-len(raw) % 8)  # data 8-byte aligned
        self._file: BinaryIO = path.open("wb")
        self._file.write(struct.pack("<Q", len(raw)))
        self._file.write(raw)
        self._next = 0

    def write(self, name: str, tensor: torch.Tensor) -> None:
        """Write the next planned tensor (cast to its planned dtype; the shape must match)."""
        import torch

        if self._next >= len(self.plan) or self.plan[self._next].name != name:
            expected = self.plan[self._next].name if self._next < len(self.plan) else "nothing"
            raise ConfigError(f"{self.path}: tensor {name!r} written out of order (expected {expected})")
        item = self.plan[self._next]
        if tuple(tensor.shape) != item.shape or safetensors_dtype(tensor.dtype) != item.dtype:
            raise ConfigError(
                f"{self.path}: tensor {name!r} is {tuple(tensor.shape)} {tensor.dtype}, "
                f"planned {item.shape} {item.dtype}"
            )
        data = tensor.detach().to("cpu").contiguous().reshape(-1)
        payload: Any = data.view(torch.uint8).numpy()  # raw bytes of any dtype (bfloat16 has no numpy type)
        self._file.write(payload)
        self._next += 1

    def close(self) -> None:
        """Finish the file; raise if planned tensors were not written."""
        self._file.close()
        if self._next != len(self.plan):
            self.path.unlink(missing_ok=True)
            raise ConfigError(f"{self.path}: {len(self.plan) - self._next} planned tensors were not written")

    def abort(self) -> None:
        """Close and delete the partial file."""
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> StreamingSafetensorsWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
