"""Identifiable domain translation: the auxiliary variable removes the 1-D mirror ambiguity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ot")

from malot_domains.core.synthetic import mirror_pair_1d  # noqa: E402
from malot_domains.translate import conditional_mismatch, fit_translation, translator  # noqa: E402

from malot.errors import ToolError  # noqa: E402
from malot.tools import get_registry  # noqa: E402


def _fixed_map(sign: float) -> torch.nn.Module:
    """A translator that computes ``sign * x`` exactly (linear part ``sign``, MLP output zero)."""
    net = translator(1)
    with torch.no_grad():
        for param in net.parameters():
            param.zero_()
        net.linear.weight.fill_(sign)  # type: ignore[union-attr, operator]
    return net


def test_mirror_matches_the_marginal_but_not_the_auxiliary_conditionals() -> None:
    x, y, ux, uy = mirror_pair_1d(0, 4000)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    uxt, uyt = torch.tensor(ux), torch.tensor(uy)
    zeros_x, zeros_y = torch.zeros_like(uxt), torch.zeros_like(uyt)
    with torch.no_grad():
        identity, mirror = _fixed_map(1.0)(xt), _fixed_map(-1.0)(xt)
        marginal_identity = float(conditional_mismatch(identity, yt, zeros_x, zeros_y, [0]))
        marginal_mirror = float(conditional_mismatch(mirror, yt, zeros_x, zeros_y, [0]))
        conditional_identity = float(conditional_mismatch(identity, yt, uxt, uyt, [0, 1]))
        conditional_mirror = float(conditional_mismatch(mirror, yt, uxt, uyt, [0, 1]))
    # both maps match the marginal up to sampling noise (W2 of two 4000-sample draws): the ambiguity is real
    assert marginal_identity < 0.05 and marginal_mirror < 0.05
    # the mirror moves each conditional by 0.5 (W2 = 0.5 per value of u); the identity only by sampling noise
    assert conditional_mirror > 0.8
    assert conditional_mirror > 10 * conditional_identity


@pytest.mark.slow
def test_auxiliary_matching_finds_the_true_translation_and_scores_it_below_the_mirror() -> None:
    x, y, ux, uy = mirror_pair_1d(1, 1500)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    f, _, _ = fit_translation(x, y, ux, uy, steps=80, lr=2e-2, batch=256, bidirectional=False, restarts=3)
    with torch.no_grad():
        mapped = f(xt)
        learned = float(conditional_mismatch(mapped, yt, torch.tensor(ux), torch.tensor(uy), [0, 1], seed=0))
        mirror = float(
            conditional_mismatch(_fixed_map(-1.0)(xt), yt, torch.tensor(ux), torch.tensor(uy), [0, 1], seed=0)
        )
    assert float(np.corrcoef(mapped.numpy()[:, 0], x[:, 0])[0, 1]) > 0.98  # the identity, not the mirror
    assert learned < mirror / 5


def _write(tmp_path: Path, x: np.ndarray, y: np.ndarray, ux: np.ndarray, uy: np.ndarray) -> tuple[str, str]:
    src, tgt = tmp_path / "src.npz", tmp_path / "tgt.npz"
    np.savez(src, X=x, u=ux)
    np.savez(tgt, Y=y, u=uy)
    return str(src), str(tgt)


def test_tool_runs_through_the_registry_and_writes_the_translation(tmp_path: Path) -> None:
    x, y, ux, uy = mirror_pair_1d(2, 400)
    src, tgt = _write(tmp_path, x, y, ux, uy)
    out = tmp_path / "mapped.npy"
    result = get_registry().run_sync(
        "domain_translate",
        {"source": src, "target": tgt, "steps": 20, "restarts": 1, "out": str(out)},
        isolation="inline",
    )
    assert result.groups == 2  # type: ignore[attr-defined]
    assert result.conditional_mismatch >= 0  # type: ignore[attr-defined]
    assert np.load(out).shape == (400, 1)


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    x, y, ux, uy = mirror_pair_1d(3, 50)
    registry = get_registry()
    src, tgt = _write(tmp_path, x, np.hstack([y, y]), ux, uy)
    with pytest.raises(ToolError, match="dimension"):
        registry.run_sync("domain_translate", {"source": src, "target": tgt, "steps": 1}, isolation="inline")
    src, tgt = _write(tmp_path, x, y, ux, uy + 5)
    with pytest.raises(ToolError, match="auxiliary value"):
        registry.run_sync("domain_translate", {"source": src, "target": tgt, "steps": 1}, isolation="inline")
    bad = x.copy()
    bad[3, 0] = np.nan
    src, tgt = _write(tmp_path, bad, y, ux, uy)
    with pytest.raises(ToolError, match="NaN"):
        registry.run_sync("domain_translate", {"source": src, "target": tgt, "steps": 1}, isolation="inline")
    src, tgt = _write(tmp_path, x, y, ux[:-1], uy)
    with pytest.raises(ToolError, match="entries"):
        registry.run_sync("domain_translate", {"source": src, "target": tgt, "steps": 1}, isolation="inline")


def test_an_agent_sees_and_calls_the_tool_through_function_calling(tmp_path: Path) -> None:
    import asyncio
    import json

    from malot.tools import RegistrySource

    x, y, ux, uy = mirror_pair_1d(4, 200)
    src, tgt = _write(tmp_path, x, y, ux, uy)
    source = RegistrySource(names=["domain_translate"], isolation="inline")
    specs = asyncio.run(source.list_tools())
    assert specs[0].name == "domain_translate"
    assert {"needs:source", "needs:target", "domains"} <= set(specs[0].tags)
    result = asyncio.run(
        source.call_tool("domain_translate", {"source": src, "target": tgt, "steps": 3, "restarts": 1})
    )
    assert json.loads(result.content)["groups"] == 2
