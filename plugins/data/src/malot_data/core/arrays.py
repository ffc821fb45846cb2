"""Array files for the data tools, and the checks every tool runs on its inputs.

An *array reference* is a path to a ``.npy`` file, a ``.npz`` file with one array, ``FILE.npz:KEY`` for one array of
an ``.npz`` with several, or a ``.csv``/``.txt`` of numbers (one row a line, comma- or space-separated). Every check
raises :class:`ToolError` with a hint, so a bad file gives one clear message.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from malot.errors import ToolError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["check_labels", "check_matrix", "load_array", "save_arrays"]


def _split_ref(ref: str) -> tuple[Path, str | None]:
    path, _, key = ref.partition(".npz:")
    if key:
        return Path(path + ".npz"), key
    return Path(ref), None


def load_array(ref: str, *, name: str = "array") -> NDArray[Any]:
    """Load the array behind an array reference (see the module docstring)."""
    import numpy as np

    path, key = _split_ref(ref)
    if not path.is_file():
        raise ToolError(f"{name}: file {path} does not exist", hint="pass a .npy, .npz, FILE.npz:KEY or .csv file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.asarray(np.load(path, allow_pickle=False))
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                keys = list(archive.keys())
                if key is None:
                    if len(keys) != 1:
                        raise ToolError(
                            f"{name}: {path} holds {len(keys)} arrays {keys[:8]}",
                            hint=f"name one as {path}:KEY",
                        )
                    key = keys[0]
                if key not in keys:
                    raise ToolError(f"{name}: {path} has no array {key!r}", hint=f"its arrays are {keys[:8]}")
                return np.asarray(archive[key])
        if suffix in (".csv", ".txt", ".tsv"):
            text = path.read_text(encoding="utf-8")
            rows = [line.replace(",", " ").split() for line in text.splitlines() if line.strip()]
            return np.asarray([[float(v) for v in row] for row in rows], dtype=np.float64).squeeze()
    except ToolError:
        raise
    except (ValueError, OSError) as exc:
        raise ToolError(f"{name}: cannot read {path}: {exc}", hint="write it with numpy.save / numpy.savez") from None
    raise ToolError(f"{name}: unsupported file type {suffix!r}", hint="use .npy, .npz, FILE.npz:KEY or .csv")


def check_matrix(array: Any, *, name: str, rows: int | None = None, min_rows: int = 1) -> NDArray[np.float64]:
    """``array`` as a finite 2-D float matrix with at least ``min_rows`` rows (``rows`` exactly, when given)."""
    import numpy as np

    matrix = np.asarray(array, dtype=np.float64)
    if matrix.ndim == 1:
        raise ToolError(f"{name} must be a matrix (one row per sample), got a vector", hint="reshape it to (n, d)")
    if matrix.ndim != 2:
        matrix = matrix.reshape(matrix.shape[0], -1) if matrix.ndim > 2 else matrix
    if matrix.ndim != 2:
        raise ToolError(f"{name} must be a matrix (one row per sample), got shape {matrix.shape}")
    if matrix.shape[0] < min_rows:
        raise ToolError(f"{name} has {matrix.shape[0]} rows, needs at least {min_rows}", hint="pass more samples")
    if matrix.shape[1] == 0:
        raise ToolError(f"{name} has no columns", hint="pass at least one feature per sample")
    if rows is not None and matrix.shape[0] != rows:
        raise ToolError(f"{name} has {matrix.shape[0]} rows, expected {rows}", hint="give one row per sample")
    if not np.isfinite(matrix).all():
        raise ToolError(f"{name} contains NaN or infinite values", hint="drop or impute them first")
    return matrix


def check_labels(array: Any, *, name: str, rows: int | None = None, classes: int | None = None) -> NDArray[np.int64]:
    """``array`` as a vector of non-negative integer class labels (``rows`` long; below ``classes`` when given)."""
    import numpy as np

    raw = np.asarray(array)
    if raw.ndim != 1 or raw.size == 0:
        raise ToolError(f"{name} must be a non-empty vector of labels, got shape {raw.shape}")
    if raw.dtype.kind == "f":
        if not np.isfinite(raw).all() or not np.equal(np.round(raw), raw).all():
            raise ToolError(f"{name} must hold integer class labels", hint="encode classes as 0, 1, 2, ...")
    elif raw.dtype.kind not in "iub":
        raise ToolError(f"{name} must hold integer class labels, got dtype {raw.dtype}")
    labels = raw.astype(np.int64)
    if rows is not None and labels.shape[0] != rows:
        raise ToolError(f"{name} has {labels.shape[0]} labels, expected {rows}", hint="give one label per sample")
    if labels.min() < 0 or (classes is not None and labels.max() >= classes):
        bound = f" and below {classes}" if classes is not None else ""
        raise ToolError(f"{name} labels must be >= 0{bound}", hint="encode classes as 0, 1, 2, ...")
    return labels


def save_arrays(path: str | Path, **arrays: Any) -> Path:
    """Write named arrays to one ``.npz`` file (parent folders created); returns the path."""
    import numpy as np

    out = Path(path)
    if out.suffix.lower() != ".npz":
        raise ToolError(f"output {out} must end in .npz", hint="name the output file something.npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    return out
