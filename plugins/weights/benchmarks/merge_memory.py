"""Peak memory and time of merging two large checkpoints: ``malot tools run fisher_merge`` vs mergekit's linear merge.

Builds two synthetic Llama-architecture checkpoints (``config.json`` + ``model.safetensors``, float32, random
weights, written tensor by tensor) of about ``--size-mb`` each (1 GB in full mode), then merges them

- with malot: ``python -m malot tools run fisher_merge`` (no Fishers given: the weighted average, i.e. a linear
  merge; the tool streams tensor by tensor and writes the output as it goes), and
- with mergekit: ``mergekit-yaml`` with ``merge_method: linear`` (default options), from a separate virtual
  environment (``--mergekit-venv``; mergekit is not installed into malot's environment because it pins its own
  torch/transformers versions),

each in its own child process whose peak resident memory is read from ``wait4``'s ``ru_maxrss`` (the kernel's
high-water mark of the child and the processes it waited for). Both outputs are compared tensor by tensor.

    python plugins/weights/benchmarks/merge_memory.py --quick --out merge_memory.json
    python plugins/weights/benchmarks/merge_memory.py --out merge_memory.json          # two 1 GB checkpoints

Writes one JSON object: ``peak_memory_ratio`` (malot's peak RSS / one checkpoint's size), ``time_ratio_vs_mergekit``
(malot's wall time / mergekit's), ``memory_ratio_vs_mergekit`` (malot's peak RSS / mergekit's); the last two are
``null`` if mergekit could not run, with the reason under ``details``. In ``--quick`` mode (128 MB checkpoints) the
peak is dominated by Python with torch imported (about 300-370 MB, measured as
``details.python_torch_baseline_peak_rss_bytes``), so ``peak_memory_ratio`` is only meaningful in full mode.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HIDDEN = {"quick": 512, "full": 1024}


def llama_config(hidden: int, layers: int, vocab: int) -> dict[str, Any]:
    """A Llama config for the synthetic checkpoints (what mergekit needs to recognise the architecture)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": hidden * 11 // 4,
        "num_hidden_layers": layers,
        "num_attention_heads": hidden // 64,
        "num_key_value_heads": hidden // 64,
        "vocab_size": vocab,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "hidden_act": "silu",
        "bos_token_id": 1,
        "eos_token_id": 2,
    }


def tensor_plan(config: dict[str, Any]) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes of every tensor of a Llama model with this config."""
    h, i, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    plan: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (v, h))]
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        plan += [(p + f"self_attn.{n}_proj.weight", (h, h)) for n in ("q", "k", "v", "o")]
        plan += [(p + "mlp.gate_proj.weight", (i, h)), (p + "mlp.up_proj.weight", (i, h))]
        plan += [(p + "mlp.down_proj.weight", (h, i))]
        plan += [(p + "input_layernorm.weight", (h,)), (p + "post_attention_layernorm.weight", (h,))]
    plan += [("model.norm.weight", (h,)), ("lm_head.weight", (v, h))]
    return plan


def config_for_size(size_bytes: int, hidden: int) -> dict[str, Any]:
    """The fewest layers that make a float32 Llama with this hidden size at least ``size_bytes`` large."""
    vocab = 8192
    per_layer = 4 * (4 * hidden * hidden + 3 * hidden * (hidden * 11 // 4) + 2 * hidden)
    fixed = 4 * (2 * vocab * hidden + hidden)
    layers = max(1, math.ceil((size_bytes - fixed) / per_layer))  # at least size_bytes
    return llama_config(hidden, layers, vocab)


def write_checkpoint(folder: Path, config: dict[str, Any], seed: int) -> int:
    """Write random float32 weights tensor by tensor (never the whole model in memory); returns the bytes."""
    import torch
    from malot_weights.core import CheckpointWriter, TensorInfo

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    plan = tensor_plan(config)
    generator = torch.Generator().manual_seed(seed)
    with CheckpointWriter(folder, [TensorInfo(n, "F32", s) for n, s in plan], max_shard_bytes=1 << 40) as writer:
        for name, shape in plan:
            writer.write(name, torch.randn(shape, generator=generator) * 0.02)
    return sum((folder / f).stat().st_size for f in os.listdir(folder) if f.endswith(".safetensors"))


def run_measured(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Run a command as a child process; wall time and peak RSS (bytes) from ``wait4``."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    # drain the pipes in threads so a chatty child cannot block, then reap it with wait4 for its rusage
    import threading

    chunks: dict[str, bytes] = {}

    def drain(name: str, stream: Any) -> None:
        chunks[name] = stream.read()

    threads = [threading.Thread(target=drain, args=(n, s)) for n, s in (("out", proc.stdout), ("err", proc.stderr))]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    for t in threads:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "returncode": proc.returncode,
        "wall_s": round(elapsed, 3),
        "peak_rss_bytes": usage.ru_maxrss * 1024,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "stdout_tail": chunks.get("out", b"").decode(errors="replace")[-1500:],
        "stderr_tail": chunks.get("err", b"").decode(errors="replace")[-1500:],
    }


def python_baseline_rss() -> int:
    """Peak RSS of a child that only imports torch and malot_weights' tool module (the floor of any merge)."""
    code = "import torch, malot.tools, malot_weights.fisher"
    return int(run_measured([sys.executable, "-c", code])["peak_rss_bytes"])


def merge_with_malot(a: Path, b: Path, out: Path) -> dict[str, Any]:
    """``malot tools run fisher_merge`` on the two folders (a linear merge: no Fishers)."""
    args = {"models": [str(a), str(b)], "output": str(out)}
    env = {**os.environ, "MALOT_PLUGINS": "weights", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    argv = [sys.executable, "-m", "malot", "tools", "run", "fisher_merge", "--json", "--args", json.dumps(args)]
    return run_measured(argv, env=env)


def merge_with_mergekit(venv: Path, a: Path, b: Path, out: Path, work: Path) -> dict[str, Any]:
    """mergekit's linear merge with default options, from its own virtual environment."""
    exe = venv / "bin" / "mergekit-yaml"
    if not exe.is_file():
        return {"error": f"mergekit-yaml not found in {venv}"}
    config = work / "mergekit.yml"
    config.write_text(
        "merge_method: linear\n"
        "dtype: float32\n"
        "models:\n"
        f"  - model: {a}\n    parameters:\n      weight: 1.0\n"
        f"  - model: {b}\n    parameters:\n      weight: 1.0\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"})
    result = run_measured([str(exe), str(config), str(out), "--no-copy-tokenizer", "--quiet"], env=env, cwd=work)
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('mergekit'))"],
        capture_output=True, text=True, check=False, env=env,
    ).stdout.strip()  # fmt: skip
    result["version"] = version
    return result


def compare_outputs(ours: Path, theirs: Path) -> dict[str, Any]:
    """Largest absolute difference between the two merged checkpoints, tensor by tensor."""
    from malot_weights.core import open_source

    a, b = open_source(ours), open_source(theirs)
    try:
        worst = 0.0
        names, theirs = a.keys(), set(b.keys())
        missing = [n for n in names if n not in theirs]
        for name in names:
            if name in missing:
                continue
            worst = max(worst, float((a.read(name) - b.read(name).to(a.read(name).dtype)).abs().max()))
        return {"max_abs_diff": worst, "tensors": len(names), "missing_in_mergekit_output": missing[:5]}
    finally:
        a.close()
        b.close()


def main() -> None:
    """Build the checkpoints, run both merges, write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Smaller checkpoints (default 128 MB) for a fast run.")
    parser.add_argument("--size-mb", type=float, default=None, help="Checkpoint size (default 1000, quick 128).")
    parser.add_argument("--out", type=Path, required=True, help="Where to write the JSON report.")
    parser.add_argument("--mergekit-venv", type=Path, default=Path("/tmp/mergekit-venv"))
    parser.add_argument("--workdir", type=Path, default=None, help="Scratch folder (default: a temporary one).")
    parser.add_argument("--keep", action="store_true", help="Keep the checkpoints and outputs.")
    opts = parser.parse_args()

    mode = "quick" if opts.quick else "full"
    size_mb = opts.size_mb or (128.0 if opts.quick else 1000.0)
    work = opts.workdir or Path(tempfile.mkdtemp(prefix="malot-merge-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        config = config_for_size(int(size_mb * 1e6), HIDDEN[mode])
        t0 = time.perf_counter()
        size_a = write_checkpoint(work / "a", config, seed=1)
        size_b = write_checkpoint(work / "b", config, seed=2)
        build_s = time.perf_counter() - t0
        baseline = python_baseline_rss()
        ours = merge_with_malot(work / "a", work / "b", work / "merged-malot")
        if ours["returncode"] != 0:
            raise SystemExit(f"malot merge failed: {ours['stderr_tail']}")
        mk = merge_with_mergekit(opts.mergekit_venv, work / "a", work / "b", work / "merged-mergekit", work)
        mk_ok = "error" not in mk and mk.get("returncode") == 0
        agreement = compare_outputs(work / "merged-malot", work / "merged-mergekit") if mk_ok else None
        report = {
            "peak_memory_ratio": ours["peak_rss_bytes"] / size_a,
            "time_ratio_vs_mergekit": ours["wall_s"] / mk["wall_s"] if mk_ok else None,
            "memory_ratio_vs_mergekit": ours["peak_rss_bytes"] / mk["peak_rss_bytes"] if mk_ok else None,
            "details": {
                "mode": mode,
                "checkpoint_bytes": [size_a, size_b],
                "checkpoint_config": {k: config[k] for k in ("hidden_size", "num_hidden_layers", "vocab_size")},
                "largest_tensor_bytes": 4 * max(_numel(s) for _, s in tensor_plan(config)),
                "build_s": round(build_s, 2),
                "python_torch_baseline_peak_rss_bytes": baseline,
                "malot": {k: v for k, v in ours.items() if k != "stdout_tail"},
                "malot_command": "python -m malot tools run fisher_merge (heavy tool: runs in a worker process)",
                "mergekit": mk if not mk_ok else {k: v for k, v in mk.items() if k not in ("stdout_tail",)},
                "mergekit_command": "mergekit-yaml (merge_method: linear, dtype float32, default options)",
                "outputs_agree": agreement,
                "peak_under_1_5_gb": ours["peak_rss_bytes"] < 1.5e9,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
            },
        }
        if not mk_ok:
            report["details"]["mergekit_unavailable"] = mk.get("error") or mk.get("stderr_tail", "")[-600:]
    finally:
        if not opts.keep and opts.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "details"}, indent=2))


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


if __name__ == "__main__":
    main()
