"""Streaming safetensors I/O: read one tensor at a time, write a file tensor by tensor.

The `safetensors format <https://huggingface.co/docs/safetensors>`_ is an 8-byte little-endian header length, a JSON
header (per tensor: dtype, shape, byte offsets into the data section; optional ``__metadata__`` strings) and the raw
data. :class:`SafetensorsReader` parses the header and reads a tensor with ``readinto`` straight into a fresh tensor,
without memory-mapping the file, so the resident memory of a long merge stays at "the tensors in flight" rather than
growing with every page of the inputs touched. :class:`SafetensorsWriter` writes the header first (the caller plans
names, dtypes and shapes up front) and then the tensors in order, so a merged model never has to be held in memory.
Files written here load with ``safetensors.torch.load_file`` and ``safe_open``.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch

__all__ = [
    "SafetensorsReader",
    "SafetensorsWriter",
    "TensorInfo",
    "dtype_from_name",
    "dtype_name",
    "element_size",
]

_DTYPE_NAMES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}
_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
_MAX_HEADER = 100 * 1024 * 1024


def dtype_from_name(name: str) -> torch.dtype:
    """The torch dtype of a safetensors dtype code (``"F32"`` -> ``torch.float32``)."""
    import torch

    if name not in _DTYPE_NAMES:
        raise ToolError(f"unsupported safetensors dtype {name!r}", hint=f"supported: {', '.join(_DTYPE_NAMES)}")
    dtype: torch.dtype = getattr(torch, _DTYPE_NAMES[name])
    return dtype


def dtype_name(dtype: torch.dtype) -> str:
    """The safetensors dtype code of a torch dtype (``torch.float32`` -> ``"F32"``)."""
    text = str(dtype).removeprefix("torch.")
    for code, name in _DTYPE_NAMES.items():
        if name == text:
            return code
    raise ToolError(f"dtype {dtype} cannot be stored in safetensors here", hint="convert to float32/float16/bfloat16")


def element_size(code: str) -> int:
    """Bytes per element of a safetensors dtype code."""
    return _SIZES[code]


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """Name, dtype code, shape and byte range (relative to the data section) of one stored tensor."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int = 0
    end: int = 0

    @property
    def offsets(self) -> tuple[int, int]:
        """``(start, end)`` byte offsets in the data section."""
        return (self.start, self.end)

    @property
    def numel(self) -> int:
        """Number of elements."""
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        """Size in bytes."""
        return self.numel * _SIZES[self.dtype]


class SafetensorsReader:
    """Reads tensors one by one from a ``.safetensors`` file (header parsed once, no memory map).

    Use as a context manager, or call :meth:`close`. ``read`` returns a tensor that owns its memory.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ToolError(f"checkpoint file {self.path} does not exist", hint="pass an existing .safetensors file")
        self._file: io.BufferedReader = self.path.open("rb")
        try:
            raw_len = self._file.read(8)
            if len(raw_len) != 8:
                raise ToolError(f"{self.path} is not a safetensors file (too short)")
            (header_len,) = struct.unpack("<Q", raw_len)
            if header_len > _MAX_HEADER:
                raise ToolError(f"{self.path} is not a safetensors file (header length {header_len})")
            header = json.loads(self._file.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self._file.close()
            raise ToolError(f"{self.path} is not a safetensors file: {exc}") from None
        except BaseException:
            self._file.close()
            raise
        self._data_start = 8 + header_len
        meta = header.pop("__metadata__", None) or {}
        self.metadata: dict[str, str] = {str(k): str(v) for k, v in meta.items()}
        self._infos: dict[str, TensorInfo] = {
            name: TensorInfo(name, spec["dtype"], tuple(spec["shape"]), *spec["data_offsets"])
            for name, spec in header.items()
        }

    def keys(self) -> list[str]:
        """Tensor names in file order."""
        return sorted(self._infos, key=lambda n: self._infos[n].start)

    def info(self, name: str) -> TensorInfo:
        """Dtype, shape and byte range of tensor ``name``."""
        try:
            return self._infos[name]
        except KeyError:
            raise ToolError(f"tensor {name!r} is not in {self.path}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._infos

    def read(self, name: str) -> torch.Tensor:
        """Read tensor ``name`` into a new tensor (only its bytes are read)."""
        import torch

        info = self.info(name)
        buf = torch.empty(info.end - info.start, dtype=torch.uint8)
        self._file.seek(self._data_start + info.start)
        if buf.numel():
            target: Any = buf.numpy()  # a writable buffer over the tensor's memory
            got = self._file.readinto(target)
            if got != buf.numel():
                raise ToolError(f"{self.path} is truncated: tensor {name!r} is incomplete")
        return buf.view(dtype_from_name(info.dtype)).reshape(info.shape)

    def read_rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        """Rows ``start:stop`` (along the first dimension) of tensor ``name``, reading only their bytes."""
        import torch

        info = self.info(name)
        if not info.shape:
            raise ToolError(f"tensor {name!r} is a scalar; it has no rows")
        rows = info.shape[0]
        start, stop = max(0, start), min(rows, stop)
        row_bytes = (info.end - info.start) // rows if rows else 0
        buf = torch.empty(max(0, stop - start) * row_bytes, dtype=torch.uint8)
        self._file.seek(self._data_start + info.start + start * row_bytes)
        if buf.numel():
            target: Any = buf.numpy()
            if self._file.readinto(target) != buf.numel():
                raise ToolError(f"{self.path} is truncated: tensor {name!r} is incomplete")
        return buf.view(dtype_from_name(info.dtype)).reshape((max(0, stop - start), *info.shape[1:]))

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> SafetensorsReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SafetensorsWriter:
    """Writes a ``.safetensors`` file whose tensors are declared up front and then written in that order.

    ``plan`` lists ``TensorInfo(name, dtype, shape)`` (offsets are computed here). ``write`` must be called once per
    planned tensor in plan order; :meth:`close` checks that every tensor was written. Memory use is one tensor.
    """

    def __init__(
        self, path: str | Path, plan: Iterable[TensorInfo], *, metadata: Mapping[str, str] | None = None
    ) -> None:
        self.path = Path(path)
        self._plan: list[TensorInfo] = []
        offset = 0
        header: dict[str, object] = {}
        if metadata:
            header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
        for item in plan:
            size = item.numel * _SIZES[item.dtype]
            placed = TensorInfo(item.name, item.dtype, tuple(item.shape), offset, offset + size)
            header[item.name] = {
                "dtype": item.dtype,
                "shape": list(item.shape),
                "data_offsets": [offset, offset + size],
            }
            self._plan.append(placed)
            offset += size
        text = json.dumps(header, separators=(",", ":")).encode("utf-8")
        text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: io.BufferedWriter = self.path.open("wb")
        self._file.write(struct.pack("<Q", len(text)))
        self._file.write(text)
        self._next = 0
        self._rows_done = 0

    @property
    def remaining(self) -> list[str]:
        """Names still to write."""
        return [p.name for p in self._plan[self._next :]]

    def write(self, name: str, tensor: torch.Tensor) -> None:
        """Write the next planned tensor (converted to the planned dtype; shape must match)."""
        expected = self._expect(name)
        if self._rows_done or tuple(tensor.shape) != expected.shape:
            raise ToolError(f"{self.path}: tensor {name!r} has shape {tuple(tensor.shape)}, planned {expected.shape}")
        self._emit(tensor, expected)
        self._next += 1

    def write_rows(self, name: str, rows: torch.Tensor) -> None:
        """Write the next rows of the next planned tensor; the tensor is done when all its rows are written."""
        expected = self._expect(name)
        if not expected.shape or tuple(rows.shape[1:]) != expected.shape[1:]:
            raise ToolError(
                f"{self.path}: rows of shape {tuple(rows.shape)} do not fit tensor {name!r} {expected.shape}"
            )
        if self._rows_done + rows.shape[0] > expected.shape[0]:
            raise ToolError(f"{self.path}: too many rows written for tensor {name!r}")
        self._emit(rows, expected)
        self._rows_done += rows.shape[0]
        if self._rows_done == expected.shape[0]:
            self._rows_done = 0
            self._next += 1

    def _expect(self, name: str) -> TensorInfo:
        if self._next >= len(self._plan):
            raise ToolError(f"{self.path}: tensor {name!r} was not planned")
        expected = self._plan[self._next]
        if name != expected.name:
            raise ToolError(f"{self.path}: expected tensor {expected.name!r} next, got {name!r}")
        return expected

    def _emit(self, tensor: torch.Tensor, expected: TensorInfo) -> None:
        import torch

        data = tensor.detach().to("cpu", dtype_from_name(expected.dtype)).contiguous()
        payload: Any = data.reshape(-1).view(torch.uint8).numpy()
        self._file.write(payload)

    def close(self) -> None:
        """Finish the file; raises if planned tensors were not written (the partial file is removed)."""
        self._file.close()
        if self._next != len(self._plan):
            missing = self.remaining
            self.path.unlink(missing_ok=True)
            raise ToolError(f"{self.path}: {len(missing)} planned tensors were not written (first: {missing[0]!r})")

    def abort(self) -> None:
        """Close and delete the partial file."""
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> SafetensorsWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()
