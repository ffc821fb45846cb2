"""LingoCL: old classes' targets never change, the head is the names' language embeddings, bad input, the tool."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from malot_continual.core.synthetic import blobs
from malot_continual.lingo import class_name_embeddings, frozen_head, lingo_head, train_class_incremental

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _stream(rows: torch.Tensor) -> list:  # type: ignore[type-arg]
    centers = rows @ torch.randn(rows.shape[1], 8, generator=torch.Generator().manual_seed(0)) * 3
    return [blobs(centers[[2 * t, 2 * t + 1]], 20, seed=t, labels=[2 * t, 2 * t + 1]) for t in range(3)]


def test_old_targets_are_unchanged_when_classes_are_appended() -> None:
    rows = torch.randn(6, 16)
    result = train_class_incremental(_stream(rows), [rows[0:2], rows[2:4], rows[4:6]], epochs=2, rehearsal=4)
    expected = torch.nn.functional.normalize(rows, dim=1)
    for t, head in enumerate(result.head_history):
        assert head.shape == (2 * (t + 1), 16)
        assert torch.equal(head, expected[: 2 * (t + 1)])  # the language rows, never trained
        if t:
            assert torch.equal(head[: 2 * t], result.head_history[t - 1])
    assert len(result.accuracy) == 3 and len(result.accuracy[2]) == 3


def test_frozen_head_append_and_dimension_check() -> None:
    first = frozen_head(None, torch.ones(2, 4))
    both = frozen_head(first, torch.eye(4)[:1])
    assert torch.equal(both[:2], first)
    with pytest.raises(ToolError, match="dimension"):
        frozen_head(first, torch.ones(1, 5))


def test_baseline_heads_and_label_checks() -> None:
    rows = torch.randn(6, 16)
    stream = _stream(rows)
    for head in ("linear", "random"):
        out = train_class_incremental(stream, [rows[0:2], rows[2:4], rows[4:6]], head=head, epochs=1)  # type: ignore[arg-type]
        assert out.head is not None and out.head.shape == (6, 16)
    with pytest.raises(ToolError, match="its own classes"):
        train_class_incremental(stream[::-1], [rows[0:2], rows[2:4], rows[4:6]], epochs=1)
    with pytest.raises(ToolError, match="class-embedding blocks"):
        train_class_incremental(stream, [rows[0:2]], epochs=1)


@pytest.mark.slow
def test_minilm_names_and_the_tool(tmp_path: Path) -> None:
    rows = class_name_embeddings(["cat", "dog", "truck"])
    assert rows.shape == (3, 384)
    assert torch.allclose(rows.norm(dim=1), torch.ones(3), atol=1e-5)
    assert float(rows[0] @ rows[1]) > float(rows[0] @ rows[2])  # cat is nearer dog than truck
    with pytest.raises(ToolError, match="repeat"):
        class_name_embeddings(["cat", "cat"])
    stream = _stream(torch.randn(6, 16))[:2]
    files = []
    for t, data in enumerate(stream):
        np.savez(tmp_path / f"t{t}.npz", x=data.x.numpy(), y=data.y.numpy())
        files.append(str(tmp_path / f"t{t}.npz"))
    registry = ToolRegistry()
    registry.register(lingo_head)
    args = {
        "class_names": [["cat", "dog"], ["car", "truck"]],
        "tasks": files,
        "epochs": 2,
        "head_out": str(tmp_path / "head.npy"),
    }
    out = registry.run_sync("lingo_head", args, isolation="inline")
    assert out.n_classes == 4 and len(out.accuracy) == 2  # type: ignore[attr-defined]
    saved = np.load(tmp_path / "head.npy")
    assert np.allclose(saved, class_name_embeddings(["cat", "dog", "car", "truck"]).numpy(), atol=1e-6)
    with pytest.raises(ToolError, match="name lists"):
        registry.run_sync("lingo_head", {**args, "class_names": [["cat", "dog"]]}, isolation="inline")
