"""The shared core: streaming safetensors I/O, sources and sharded writing, state-dict algebra, Fisher, LoRA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from malot_weights.core import (
    CheckpointWriter,
    MemorySource,
    SafetensorsReader,
    TensorInfo,
    apply_sparse_delta,
    diagonal_fisher,
    extract_lora,
    flatten,
    load_lora,
    load_state_dict,
    merge_lora,
    merge_lora_into,
    merge_tensorwise,
    open_source,
    parameter_blocks,
    save_state_dict,
    sparse_delta,
    task_vector,
    unflatten,
    unmerge_lora,
    weighted_average,
)
from safetensors.torch import load_file, save_file

from malot.errors import ToolError


def _mixed_state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "layers.0.attn.weight": torch.randn(5, 3, generator=g),
        "layers.0.attn.bias": torch.randn(5, generator=g),
        "layers.1.mlp.weight": torch.randn(4, 5, generator=g).to(torch.bfloat16),
        "norm.scale": torch.randn(2, 2, generator=g).to(torch.float16),
        "steps": torch.tensor(7),
        "mask": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 3),
    }


def test_safetensors_round_trips_both_ways(tmp_path: Path) -> None:
    state = _mixed_state()
    ours = tmp_path / "ours.safetensors"
    save_state_dict(state, ours, metadata={"who": "test"})
    theirs = load_file(str(ours))
    assert set(theirs) == set(state) and all(torch.equal(theirs[k], state[k]) for k in state)
    save_file(state, str(tmp_path / "lib.safetensors"), metadata={"a": "b"})
    with SafetensorsReader(tmp_path / "lib.safetensors") as reader:
        assert reader.metadata == {"a": "b"}
        assert all(torch.equal(reader.read(k), state[k]) for k in state)
        assert torch.equal(reader.read_rows("layers.0.attn.weight", 1, 4), state["layers.0.attn.weight"][1:4])
        assert reader.info("layers.1.mlp.weight").dtype == "BF16"
    with pytest.raises(ToolError, match="not a safetensors file"):
        (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
        SafetensorsReader(tmp_path / "junk.safetensors")


def test_sharded_folder_with_index_and_side_files(tmp_path: Path) -> None:
    state = _mixed_state()
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "config.json").write_text('{"model_type": "test"}')
    plan = [TensorInfo(k, open_source(state).info(k).dtype, tuple(v.shape)) for k, v in state.items()]
    with CheckpointWriter(tmp_path / "out", plan, max_shard_bytes=64, copy_side_files_from=ref) as writer:
        for k, v in state.items():
            writer.write(k, v)
    assert len(writer.files) > 2
    index = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(state)
    assert (tmp_path / "out" / "config.json").is_file()
    back = load_state_dict(tmp_path / "out")
    assert all(torch.equal(back[k], state[k]) for k in state)
    # a failing writer removes what it wrote
    with pytest.raises(RuntimeError), CheckpointWriter(tmp_path / "bad.safetensors", plan) as bad:
        bad.write("layers.0.attn.weight", state["layers.0.attn.weight"])
        raise RuntimeError("interrupted")
    assert not (tmp_path / "bad.safetensors").exists()


def test_streaming_merge_chunked_equals_in_memory(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(1)
    a = {"big": torch.randn(37, 11, generator=g), "small": torch.randn(3, generator=g), "n": torch.tensor(1)}
    b = {"big": torch.randn(37, 11, generator=g), "small": torch.randn(3, generator=g), "n": torch.tensor(2)}
    save_state_dict(a, tmp_path / "a.safetensors")
    save_state_dict(b, tmp_path / "b.safetensors")

    def mean(name: str, ts: list[torch.Tensor]) -> torch.Tensor:
        return (ts[0] + ts[1]) / 2

    in_memory, report = merge_tensorwise([a, b], mean)
    assert in_memory is not None and report.merged == 2 and report.copied == 1
    _, chunked = merge_tensorwise(
        [tmp_path / "a.safetensors", tmp_path / "b.safetensors"],
        mean,
        output=tmp_path / "m.safetensors",
        elementwise=True,
        chunk_bytes=200,  # forces 5-row blocks of the (37, 11) tensor
    )
    on_disk = load_file(str(tmp_path / "m.safetensors"))
    assert all(torch.equal(on_disk[k], in_memory[k]) for k in in_memory)
    assert torch.equal(on_disk["n"], a["n"])  # integer tensors are copied from the first model
    assert chunked.bytes_written == sum(v.numel() * v.element_size() for v in a.values())
    assert torch.equal(in_memory["big"], weighted_average([a, b])["big"])
    with pytest.raises(ToolError, match="shape"):
        merge_tensorwise([a, {**b, "big": torch.zeros(2, 2)}], mean)


def test_flatten_blocks_and_task_vectors() -> None:
    nested = {"a": {"b": torch.ones(1), "c": {"d": torch.zeros(2)}}, "e": torch.ones(3)}
    flat = flatten(nested)
    assert sorted(flat) == ["a.b", "a.c.d", "e"]
    assert unflatten(flat).keys() == nested.keys()
    names = ["model.layers.0.q.weight", "model.layers.0.q.bias", "model.layers.1.k.weight", "lm_head.weight"]
    assert parameter_blocks(names, "tensor") == {n: [n] for n in names}
    assert parameter_blocks(names, "module")["model.layers.0.q"] == names[:2]
    assert parameter_blocks(names, "layer") == {
        "model.layers.0": names[:2],
        "model.layers.1": [names[2]],
        "lm_head": [names[3]],
    }
    assert parameter_blocks(names, "model") == {"model": names}
    base, ft = _mixed_state(), _mixed_state()
    ft["layers.0.attn.bias"] = ft["layers.0.attn.bias"] + 1
    tau = task_vector(ft, base)
    assert "steps" not in tau and torch.allclose(tau["layers.0.attn.bias"], torch.ones(5))


def test_sparse_delta_has_exactly_k_entries_and_leaves_the_rest_bit_identical() -> None:
    g = torch.Generator().manual_seed(3)
    base = {"w": torch.randn(6, 7, generator=g), "b": torch.randn(9, generator=g)}
    ft = {k: v + 0.1 * torch.randn(v.shape, generator=g) for k, v in base.items()}
    delta = sparse_delta(ft, base, k=10)
    assert delta.nnz == 10
    out = apply_sparse_delta(base, delta)
    changed = sum(int((out[k] != base[k]).sum()) for k in base)
    assert changed == 10
    for k in base:  # the changed entries now equal the fine-tuned ones
        where = out[k] != base[k]
        assert torch.allclose(out[k][where], ft[k][where])
    all_diffs = torch.cat([(ft[k] - base[k]).abs().reshape(-1) for k in base])
    kept = torch.cat([v.abs() for v in delta.values.values()])
    assert float(kept.min()) >= float(torch.topk(all_diffs, 10).values.min()) - 1e-7


def test_lora_merge_unmerge_and_extract() -> None:
    g = torch.Generator().manual_seed(4)
    base = {"model.layers.0.q_proj.weight": torch.randn(8, 6, generator=g), "model.norm.weight": torch.ones(6)}
    lora = {
        "base_model.model.model.layers.0.q_proj.lora_A.weight": torch.randn(2, 6, generator=g),
        "base_model.model.model.layers.0.q_proj.lora_B.weight": torch.randn(8, 2, generator=g),
    }
    merged = merge_lora(base, lora, alpha=4.0)
    b_a = (
        lora["base_model.model.model.layers.0.q_proj.lora_B.weight"]
        @ lora["base_model.model.model.layers.0.q_proj.lora_A.weight"]
    )
    assert torch.allclose(merged["model.layers.0.q_proj.weight"], base["model.layers.0.q_proj.weight"] + 2.0 * b_a)
    assert torch.equal(merged["model.norm.weight"], base["model.norm.weight"])
    restored = unmerge_lora(merged, lora, alpha=4.0)
    assert torch.allclose(restored["model.layers.0.q_proj.weight"], base["model.layers.0.q_proj.weight"], atol=1e-6)
    extracted = extract_lora(base, merged, rank=2, targets=["model.layers.0.q_proj.weight"])
    again = merge_lora(base, extracted)  # a rank-2 delta is recovered exactly by a rank-2 LoRA
    assert torch.allclose(again["model.layers.0.q_proj.weight"], merged["model.layers.0.q_proj.weight"], atol=1e-5)
    with pytest.raises(ToolError, match="matches no base weight"):
        merge_lora({"other.weight": torch.zeros(8, 6)}, lora)


def test_expected_fisher_matches_the_closed_form_for_softmax_regression() -> None:
    g = torch.Generator().manual_seed(5)
    model = torch.nn.Linear(4, 3, bias=False)
    xs = [torch.randn(1, 4, generator=g) for _ in range(5)]
    fisher = diagonal_fisher(model, xs, labels="expected")["weight"]
    # for logits W x: d log p_y / d W[c, d] = (1[y = c] - p_c) x_d, so F[c, d] = E_x[p_c (1 - p_c) x_d²]
    expected = torch.zeros(3, 4)
    for x in xs:
        p = torch.softmax(model(x), dim=-1)[0].detach()
        expected += (p * (1 - p)).unsqueeze(1) * (x[0] ** 2).unsqueeze(0)
    assert torch.allclose(fisher, expected / len(xs), atol=1e-6)
    sampled = diagonal_fisher(model, xs * 40, labels="sample", seed=1)["weight"]
    assert torch.allclose(sampled, fisher, rtol=0.5, atol=0.02)  # Monte-Carlo estimate of the same quantity
    assert torch.equal(sampled, diagonal_fisher(model, xs * 40, labels="sample", seed=1)["weight"])
    assert model.weight.grad is None


def test_memory_source_and_open_source(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 2)
    source = open_source(model)
    assert isinstance(source, MemorySource) and source.keys() == ["weight", "bias"]
    copy = source.read("weight")
    copy += 1
    assert not torch.equal(copy, model.weight)  # reads are copies
    with pytest.raises(ToolError, match="does not exist"):
        open_source(tmp_path / "missing.safetensors")


class _CountingSource(MemorySource):
    """A state dict that records the largest number of elements handed out by one read."""

    largest = 0

    def read(self, name: str) -> torch.Tensor:
        out = super().read(name)
        self.largest = max(self.largest, out.numel())
        return out

    def read_rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        out = super().read_rows(name, start, stop)
        self.largest = max(self.largest, out.numel())
        return out


def test_streaming_merge_never_reads_more_than_a_chunk_of_a_large_tensor(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(6)
    sources = [_CountingSource({"emb": torch.randn(1000, 100, generator=g)}) for _ in range(2)]
    merge_tensorwise(
        sources,
        lambda n, ts: (ts[0] + ts[1]) / 2,
        output=tmp_path / "m.safetensors",
        elementwise=True,
        chunk_bytes=40_000,  # 100 rows of 100 float32
    )
    assert all(s.largest == 100 * 100 for s in sources)
    merged = load_file(str(tmp_path / "m.safetensors"))["emb"]
    assert torch.allclose(merged, (sources[0].read("emb") + sources[1].read("emb")) / 2)


def test_streaming_lora_merge_equals_in_memory_merge(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(7)
    base = {"model.q.weight": torch.randn(6, 4, generator=g), "model.n.weight": torch.ones(4)}
    lora = {
        "base_model.model.model.q.lora_A.weight": torch.randn(2, 4, generator=g),
        "base_model.model.model.q.lora_B.weight": torch.randn(6, 2, generator=g),
    }
    save_state_dict(base, tmp_path / "base.safetensors")
    adapter = tmp_path / "adapter"
    save_state_dict(lora, adapter / "adapter_model.safetensors")
    (adapter / "adapter_config.json").write_text('{"r": 2, "lora_alpha": 8}')
    tensors, alpha = load_lora(adapter)
    assert alpha == 8.0
    merge_lora_into(tmp_path / "base.safetensors", tensors, tmp_path / "merged.safetensors", alpha=alpha)
    streamed = load_file(str(tmp_path / "merged.safetensors"))
    in_memory = merge_lora(base, lora, alpha=8.0)
    assert all(torch.equal(streamed[k], in_memory[k]) for k in base)
