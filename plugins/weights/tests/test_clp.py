"""CLP-Transfer: copy of shared tokens, similarity-weighted new tokens, and the tool on tiny model folders."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from malot_weights.clp import ClpTransferInput, clp_embeddings, clp_transfer  # noqa: E402


def _setup() -> tuple[torch.Tensor, dict[str, int], torch.Tensor, dict[str, int]]:
    g = torch.Generator().manual_seed(0)
    source_vocab = {"a": 0, "b": 1, "c": 2, "d": 3}
    target_vocab = {"c": 0, "x": 1, "a": 2, "y": 3, "b": 4}
    return torch.randn(4, 6, generator=g), source_vocab, torch.randn(5, 3, generator=g), target_vocab


def test_overlapping_tokens_are_copied_and_new_tokens_are_normalised_similarity_sums() -> None:
    source, sv, helper, tv = _setup()
    result = clp_embeddings(source, sv, helper, tv, negative="keep")
    assert (result.overlapping, result.new, result.unmapped_rows) == (3, 2, 0)
    for token in ("a", "b", "c"):
        assert torch.equal(result.weight[tv[token]], source[sv[token]])
    overlap = ["a", "b", "c"]
    h = torch.nn.functional.normalize(helper, dim=1)
    for token in ("x", "y"):
        sims = torch.stack([h[tv[token]] @ h[tv[u]] for u in overlap])
        expected = sum(w * source[sv[u]] for w, u in zip(sims / sims.sum(), overlap, strict=True))
        assert torch.allclose(result.weight[tv[token]], expected, atol=1e-5)


def test_clipping_drops_negative_similarities() -> None:
    source, sv, helper, tv = _setup()
    helper[tv["x"]] = helper[tv["a"]] - helper[tv["b"]]  # similar to a, dissimilar to b
    kept = clp_embeddings(source, sv, helper, tv, negative="keep").weight[tv["x"]]
    clipped = clp_embeddings(source, sv, helper, tv).weight[tv["x"]]
    h = torch.nn.functional.normalize(helper, dim=1)
    sims = {u: float(h[tv["x"]] @ h[tv[u]]) for u in ("a", "b", "c")}
    positive = {u: s for u, s in sims.items() if s > 0}
    expected = sum(s * source[sv[u]] for u, s in positive.items()) / sum(positive.values())
    assert sims["b"] < 0 and torch.allclose(clipped, expected, atol=1e-5) and not torch.allclose(kept, clipped)


def test_top_1_gives_the_nearest_shared_token() -> None:
    source, sv, helper, tv = _setup()
    helper[tv["x"]] = 2.0 * helper[tv["b"]]  # x points exactly where b points in the small model
    result = clp_embeddings(source, sv, helper, tv, top_k=1)
    assert torch.allclose(result.weight[tv["x"]], source[sv["b"]])


def test_clp_transfer_tool_writes_a_loadable_model_with_the_target_tokenizer(tmp_path: Path) -> None:
    from malot_weights.causal_lm import build_tiny_lm_folder, load_causal_lm, load_tokenizer

    source = build_tiny_lm_folder(tmp_path / "src", ["the", "cat", "sat", "mat"], hidden_size=16, layers=1)
    helper = build_tiny_lm_folder(tmp_path / "hlp", ["the", "katze", "sat", "matte", "hund"], hidden_size=8, layers=1)
    result = clp_transfer(ClpTransferInput(source=str(source), helper=str(helper), out=str(tmp_path / "out")))
    assert (result.overlapping_tokens, result.new_tokens, result.output_embeddings) == (6, 3, "tied")
    model = load_causal_lm(result.out)
    src_model = load_causal_lm(source)
    tok, src_tok = load_tokenizer(result.out), load_tokenizer(source)
    emb, src_emb = model.get_input_embeddings().weight, src_model.get_input_embeddings().weight
    assert emb.shape == (9, 16)
    assert torch.equal(emb[tok.convert_tokens_to_ids("sat")], src_emb[src_tok.convert_tokens_to_ids("sat")])
    layer = "model.layers.0.mlp.up_proj.weight"
    assert torch.equal(model.state_dict()[layer], src_model.state_dict()[layer])
    ids = tok("the katze sat", return_tensors="pt")["input_ids"]
    assert model(input_ids=ids).logits.shape == (1, 3, 9)
