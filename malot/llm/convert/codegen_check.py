"""The logits self-check of a CodeGen -> GPT-J conversion: both models on CPU in float32, a few random tokens.

The reference is transformers' own ``CodeGenForCausalLM`` built from the source config and weights; the candidate is
transformers' ``GPTJForCausalLM`` built from the converted folder. Both keep only the first ``layers`` blocks (plus
embeddings, final norm and head), so the check costs two small models even for a 16B checkpoint, and every
converted tensor kind (the split projections above all) takes part. A wrong block count mixes query, key and value
rows across heads, which moves the logits by orders of magnitude more than the float32 tolerance.

transformers' CodeGen splits ``qkv_proj`` into 4 blocks. For a checkpoint whose own modelling code uses another count
(CodeGen2-1B: 8, read from its ``modeling_codegen.py``), the reference gets the fused weight re-packed from that
count into transformers' 4-block layout first. The reference's count always comes from the source itself (its
modelling code, or transformers' 4 when it has none), never from ``--mp-num``, so a wrong ``--mp-num`` fails the
check; only when the source names modelling code that is not in the folder is the count unknown, and then the check
verifies everything but the count.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from malot.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from malot.llm.convert.codegen import SourceWeights

__all__ = ["check_logits", "repack_qkv"]


def repack_qkv(weight: torch.Tensor, mp_num: int, target: int) -> torch.Tensor:
    """Re-pack a fused ``qkv_proj`` weight from ``mp_num`` ``[q, v, k]`` blocks into ``target`` blocks."""
    import torch

    from malot.llm.convert.codegen import split_qkv

    if mp_num == target:
        return weight
    q, k, v = split_qkv(weight, mp_num)
    rows, cols = q.shape
    parts = [t.reshape(target, rows // target, cols) for t in (q, v, k)]
    return torch.stack(parts, dim=1).reshape(3 * rows, cols)


def _converted_tensors(folder: Path) -> dict[str, Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return {str(k): folder / str(v) for k, v in weight_map.items()}
    from safetensors import safe_open

    path = folder / "model.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        return dict.fromkeys(handle.keys(), path)


def check_logits(
    weights: SourceWeights,
    config: dict[str, Any],
    converted: Path,
    mp_num: int,
    *,
    reference_mp_num: int | None = None,
    layers: int = 2,
    tokens: int = 16,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare the two models' logits; return the figures, or raise :class:`ConfigError` when they disagree.

    ``mp_num`` is the block count the conversion used; ``reference_mp_num`` the one the source's own modelling code
    uses (:func:`~malot.llm.convert.codegen.detect_mp_num`; ``None``: unknown, so ``mp_num`` is taken and the check
    cannot catch a wrong count). The reference reads the fused weight with ``reference_mp_num`` blocks.
    """
    import torch
    from safetensors import safe_open

    from malot.llm.convert.codegen import TRANSFORMERS_MP_NUM

    tf: Any = importlib.import_module("transformers")
    truth = reference_mp_num if reference_mp_num is not None else mp_num
    depth = max(1, min(layers, int(config["n_layer"])))
    n_head, n_embd = int(config["n_head"]), int(config["n_embd"])
    if n_head % TRANSFORMERS_MP_NUM or n_embd % TRANSFORMERS_MP_NUM:
        raise ConfigError(
            f"the self-check cannot run: transformers' CodeGen needs n_head ({n_head}) divisible by 4",
            hint="convert with the self-check off (--no-self-check) and compare outputs yourself",
        )
    keep = {k: v for k, v in config.items() if k not in ("auto_map", "architectures", "_name_or_path")}
    keep.update(n_layer=depth, tie_word_embeddings=False)
    with torch.device("cpu"):
        reference = tf.CodeGenForCausalLM(tf.CodeGenConfig(**keep)).float().eval()
        gptj_cfg = json.loads((converted / "config.json").read_text(encoding="utf-8"))
        gptj_cfg.update(n_layer=depth)
        gptj_cfg.pop("architectures", None)
        gptj_cfg.pop("model_type", None)
        candidate = tf.GPTJForCausalLM(tf.GPTJConfig(**gptj_cfg)).float().eval()

    state: dict[str, torch.Tensor] = {}
    for name in reference.state_dict():
        if name == "lm_head.weight" and name not in weights:
            tensor = weights.read("transformer.wte.weight")
        elif name == "lm_head.bias" and name not in weights:
            tensor = torch.zeros(int(config["vocab_size"]))
        else:
            tensor = weights.read(name)
            if name.endswith("attn.qkv_proj.weight"):
                tensor = repack_qkv(tensor, truth, TRANSFORMERS_MP_NUM)
        state[name] = tensor.float()
    reference.load_state_dict(state, strict=True)

    where = _converted_tensors(converted)
    handles: dict[Path, Any] = {}
    converted_state: dict[str, torch.Tensor] = {}
    try:
        for name in candidate.state_dict():
            path = where.get(name)
            if path is None:
                raise ConfigError(f"the converted checkpoint lacks tensor {name!r}")
            if path not in handles:
                handles[path] = safe_open(str(path), framework="pt")
            converted_state[name] = handles[path].get_tensor(name).float()
    finally:
        handles.clear()
    candidate.load_state_dict(converted_state, strict=True)

    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, int(config["vocab_size"]), (1, tokens), generator=generator)
    with torch.no_grad():
        expected = reference(input_ids=ids).logits
        got = candidate(input_ids=ids).logits
    diff = float((expected - got).abs().max())
    scale = float(expected.abs().max())
    tolerance = 1e-4 * max(1.0, scale)
    figures = {
        "layers": depth,
        "tokens": tokens,
        "seed": seed,
        "max_abs_diff": diff,
        "logit_scale": scale,
        "tolerance": tolerance,
        "reference": "transformers CodeGenForCausalLM"
        + ("" if truth == TRANSFORMERS_MP_NUM else f" (qkv_proj re-packed from {truth} to 4 blocks)"),
        "reference_mp_num": reference_mp_num,
    }
    if not diff <= tolerance:
        raise ConfigError(
            f"conversion self-check failed: the GPT-J logits differ from CodeGen's by up to {diff:.3g} (tolerance "
            f"{tolerance:.3g}) on {tokens} random tokens with qkv_proj split into {mp_num} blocks",
            hint="the block count is probably wrong: pass --mp-num with the value the checkpoint's modelling code "
            "uses (transformers' CodeGen: 4; CodeGen2-1B's modeling_codegen.py: 8); nothing was written",
        )
    return figures
