"""Reading the arrays tools take (``.npy``, ``.npz`` with a key, ``.csv``) and checking them with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["load_array", "require_finite", "require_labels", "require_ndim", "save_array"]


def load_array(path: str | Path, key: str | None = None) -> np.ndarray:
    """Load an array from ``.npy``, ``.npz`` (``key`` names the array; default: the only one) or ``.csv``.

    A ``.csv`` file is read as a float matrix; a header line is skipped when its first field is not a number.
    """
    import numpy as np

    file = Path(path)
    if not file.is_file():
        raise ToolError(f"array file {file} does not exist", hint="pass a .npy, .npz or .csv file")
    suffix = file.suffix.lower()
    try:
        if suffix == ".npy":
            return np.asarray(np.load(file, allow_pickle=False))
        if suffix == ".npz":
            with np.load(file, allow_pickle=False) as archive:
                names = list(archive.keys())
                if key is None:
                    if len(names) != 1:
                        raise ToolError(
                            f"{file} holds arrays {names}; say which one to use",
                            hint="pass the array's name (the tool's *_key argument)",
                        )
                    key = names[0]
                if key not in names:
                    raise ToolError(f"{file} has no array {key!r} (it has {names})", hint="check the key name")
                return np.asarray(archive[key])
        if suffix == ".csv":
            first = file.read_text(encoding="utf-8").split("\n", 1)[0].split(",")[0].strip()
            try:
                float(first)
                skip = 0
            except ValueError:
                skip = 1
            return np.asarray(np.loadtxt(file, delimiter=",", skiprows=skip, ndmin=2), dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise ToolError(f"cannot read {file}: {exc}", hint="write it with numpy.save / numpy.savez") from None
    raise ToolError(f"unsupported array file type {suffix!r} ({file})", hint="use .npy, .npz or .csv")


def save_array(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as ``.npy`` (parent folders are created)."""
    import numpy as np

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, array)
    return out


def require_finite(name: str, array: np.ndarray) -> None:
    """Raise a :class:`ToolError` if ``array`` is empty or holds NaN or infinite values."""
    import numpy as np

    if array.size == 0:
        raise ToolError(f"{name} is empty", hint=f"give {name} at least one value")
    if not np.issubdtype(array.dtype, np.number):
        raise ToolError(f"{name} must be numeric, got dtype {array.dtype}", hint="store numbers only")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ToolError(f"{name} holds {bad} NaN or infinite values", hint="impute or drop them first")


def require_ndim(name: str, array: np.ndarray, ndims: tuple[int, ...], shape_help: str) -> None:
    """Raise a :class:`ToolError` unless ``array`` has one of the allowed numbers of dimensions."""
    if array.ndim not in ndims:
        raise ToolError(f"{name} has shape {tuple(array.shape)}; expected {shape_help}", hint=f"reshape {name}")


def require_labels(name: str, labels: np.ndarray, count: int) -> np.ndarray:
    """Integer class labels of length ``count`` (a :class:`ToolError` for other lengths or non-integer values)."""
    import numpy as np

    flat = np.asarray(labels).reshape(-1)
    if flat.shape[0] != count:
        raise ToolError(f"{name} has {flat.shape[0]} entries but the data has {count} rows", hint="one label a row")
    require_finite(name, flat)
    if not np.all(np.equal(np.mod(flat, 1), 0)):
        raise ToolError(f"{name} must hold integer labels", hint="encode classes as 0, 1, 2, ...")
    return flat.astype(np.int64)
