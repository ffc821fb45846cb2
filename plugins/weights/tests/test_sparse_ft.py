"""LT-SFT and sparse-diff composition on a tiny regression model."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from malot_weights.sparse_ft import SparseDiff, compose_sparse_diffs, lt_sft, top_k_masks  # noqa: E402


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def _task(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 6, generator=generator)
    w = torch.randn(6, 2, generator=generator)
    return x, x @ w


def _loss(x: torch.Tensor, y: torch.Tensor):  # type: ignore[no-untyped-def]
    return lambda model, step: torch.nn.functional.mse_loss(model(x), y)


def test_lt_sft_diff_has_exactly_k_entries_and_leaves_the_rest_bit_identical() -> None:
    model = _model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    x, y = _task(1)
    result = lt_sft(model, _loss(x, y), k=17, full_steps=30, sparse_steps=30, lr=0.05)
    assert result.diff.nnz == 17
    assert sum(int((v != 0).sum()) for v in result.diff.values.values()) == 17
    changed = 0
    for name, param in model.named_parameters():
        dense = result.diff.dense(name) if name in result.diff.indices else torch.zeros_like(param)
        untouched = dense == 0
        assert torch.equal(param.detach()[untouched], before[name][untouched])
        assert torch.equal(param.detach(), result.diff.apply_to(name, before[name]))
        changed += int((param.detach() != before[name]).sum())
    assert changed == 17
    assert result.sparse_losses[-1] < result.sparse_losses[0]


def test_top_k_masks_select_the_largest_moves_globally() -> None:
    base = {"a": torch.zeros(3), "b": torch.zeros(2, 2)}
    tuned = {"a": torch.tensor([0.1, -5.0, 0.2]), "b": torch.tensor([[3.0, 0.0], [0.0, -0.3]])}
    masks = top_k_masks(base, tuned, 3)
    assert masks["a"].tolist() == [False, True, False]
    assert masks["b"].tolist() == [[True, False], [False, True]]


def test_composition_adds_diffs_and_round_trips_through_safetensors(tmp_path: Path) -> None:
    model = _model()
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    diffs = []
    for seed in (1, 2):
        for name, param in model.named_parameters():
            param.data.copy_(base[name])
        x, y = _task(seed)
        diff = lt_sft(model, _loss(x, y), k=10, full_steps=10, sparse_steps=10, lr=0.05).diff
        diffs.append(SparseDiff.load(diff.save(tmp_path / f"d{seed}.safetensors")))
    composed = compose_sparse_diffs(base, diffs, [1.0, 0.5])
    for name, tensor in base.items():
        expected = tensor.clone()
        for diff, scale in zip(diffs, [1.0, 0.5], strict=True):
            if name in diff.indices:
                expected = expected + scale * diff.dense(name)
        assert torch.equal(composed[name], expected)
    untouched = {n for n in base if all(n not in d.indices for d in diffs)}
    for name in untouched:
        assert torch.equal(composed[name], base[name])


def test_lt_sft_and_compose_sft_tools_on_a_tiny_model_folder(tmp_path: Path) -> None:
    from malot_weights.causal_lm import build_tiny_lm_folder, load_causal_lm
    from malot_weights.sparse_ft import ComposeSftInput, LtSftInput, compose_sft, lt_sft_tool
    from malot_weights.tool_io import load_weights

    words = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "log"]
    folder = build_tiny_lm_folder(tmp_path / "base", words, hidden_size=16, layers=1)
    data = tmp_path / "data.txt"
    data.write_text("the cat sat on a mat\nthe dog ran on a log\n" * 4)
    result = lt_sft_tool(
        LtSftInput(
            model=str(folder),
            data=str(data),
            out=str(tmp_path / "d.safetensors"),
            k=40,
            full_steps=8,
            sparse_steps=8,
            lr=0.01,
            batch_size=4,
        )
    )
    assert result.nnz == 40 and sum(result.per_parameter.values()) == 40
    assert result.sparse_loss_last is not None and result.sparse_loss_first is not None
    composed = compose_sft(ComposeSftInput(base=str(folder), diffs=[result.diff], out=str(tmp_path / "out")))
    before, after = load_weights(folder), load_weights(tmp_path / "out")
    assert set(before) == set(after)
    changed = sum(int((after[n] != before[n]).sum()) for n in before)
    assert changed == 40 == composed.changed_entries
    load_causal_lm(tmp_path / "out")  # the composed folder loads as a model
    single = compose_sft(ComposeSftInput(base=str(folder), diffs=[result.diff], out=str(tmp_path / "one.safetensors")))
    assert single.files == [str(tmp_path / "one.safetensors")]
    assert all(torch.equal(t, after[n]) for n, t in load_weights(tmp_path / "one.safetensors").items())
