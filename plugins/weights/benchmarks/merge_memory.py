"""Peak memory and time of merging two large checkpoints: ``malot tools run fisher_merge`` vs mergekit's linear merge.

Builds two synthetic Llama-architecture checkpoints (``config.json`` + ``model.safetensors``, float32, random
weights, written tensor by tensor) of about ``--size-mb`` each (1 GB in full mode), then merges them

- with malot: ``python -m malot tools run fisher_merge`` (no Fishers given: the weighted average, i.e. a linear
  merge; the tool streams tensor by tensor and writes the output as it goes), and
- with mergekit: ``mergekit-yaml`` with ``merge_method: linear`` (default options), from a separate virtual
  environment (``--mergekit-venv``; mergekit is not installed into malot's environment because it pins its own
  torch/transformers versions),

each in its own child process. The heavy tool runs in a worker process beside the ``malot`` CLI process, so memory is
measured over the whole process tree of each command:

- **headline** (``peak_memory_ratio``, ``memory_ratio_vs_mergekit``): the peak over time of the tree's summed RSS,
  sampled every ``--interval`` seconds (default 0.05) from ``/proc/PID/smaps_rollup`` of every process in the tree
  (children found through ``/proc/PID/task/*/children``);
- the same sampling gives the tree's peak PSS (shared pages split between the processes that map them: no double
  counting of the libraries both processes load) and USS (private pages only) under ``details``;
- an upper bound (``peak_memory_upper_bound_ratio``): the sum of every process's own peak, as if all peaks
  coincided: the kernel's high-water mark from ``wait4`` (``ru_maxrss``, the largest process of the tree) plus the
  last ``VmHWM`` read of each other process (read at most one interval before it exited). Sampling can miss a spike
  shorter than the interval; the upper bound cannot.
- ``details.*.largest_process_peak_rss_bytes`` is ``ru_maxrss`` alone (what earlier versions reported).

Linux only (``/proc``). Both outputs are compared tensor by tensor.

mergekit's environment: mergekit pins its own torch/transformers versions, so it lives in its own virtual
environment, ``--mergekit-venv`` (default ``$XDG_CACHE_HOME/malot/mergekit-venv``, i.e.
``~/.cache/malot/mergekit-venv``). When it has no ``mergekit-yaml`` the benchmark creates it (announced on stderr;
a few minutes, once), the same as::

    python -m venv ~/.cache/malot/mergekit-venv
    ~/.cache/malot/mergekit-venv/bin/pip install torch==2.13.0      # pin the CPU torch first: no CUDA download
    ~/.cache/malot/mergekit-venv/bin/pip install mergekit==0.1.5

(``--mergekit-torch`` and ``--mergekit-version`` change the pins; ``--no-mergekit`` skips mergekit; if the install
fails, the mergekit figures are ``null`` with the pip error under ``details.mergekit_unavailable``).

    python plugins/weights/benchmarks/merge_memory.py --quick --out merge_memory.json
    python plugins/weights/benchmarks/merge_memory.py --out merge_memory.json          # two 1 GB checkpoints

Writes one JSON object: ``peak_memory_ratio`` (malot's tree peak RSS / one checkpoint's size),
``peak_memory_upper_bound_ratio`` (malot's sum of per-process peaks / one checkpoint's size),
``time_ratio_vs_mergekit`` (malot's wall time / mergekit's), ``memory_ratio_vs_mergekit`` (tree peak RSS, malot /
mergekit), ``memory_upper_bound_ratio_vs_mergekit``; the mergekit ratios are ``null`` if mergekit could not run,
with the reason under ``details``. In ``--quick`` mode (128 MB checkpoints) the peak is dominated by Python with
torch imported (measured the same way as ``details.python_torch_baseline``), so ``peak_memory_ratio`` is only
meaningful in full mode. ``--quick`` runs in under a minute once mergekit's environment exists.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from malot.benchmarking import benchmark_args, write_result

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


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's ``children`` list)."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            except OSError:
                continue
            found += [int(c) for c in text.split()]
    except OSError:
        pass
    return found


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now."""
    tree, queue = [], [root]
    while queue:
        pid = queue.pop()
        tree.append(pid)
        queue += _children(pid)
    return tree


def process_memory(pid: int) -> dict[str, int] | None:
    """RSS, PSS, USS and the high-water mark ``VmHWM`` of one process in bytes (None if it is gone or a zombie)."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields: dict[str, int] = {}
    for line in rollup.splitlines()[1:] + status.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name] = int(parts[0]) * 1024
    if "Rss" not in fields:
        return None
    return {
        "rss": fields["Rss"],
        "pss": fields.get("Pss", 0),
        "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
        "hwm": fields.get("VmHWM", 0),
    }


class TreeSampler:
    """Samples the summed memory of a process tree every ``interval`` seconds in a thread until stopped."""

    def __init__(self, root: int, interval: float) -> None:
        """Watch ``root`` and its descendants."""
        self.root, self.interval = root, interval
        self.peak = {"rss": 0, "pss": 0, "uss": 0}
        self.hwm: dict[int, int] = {}  # pid -> last VmHWM read
        self.names: dict[int, str] = {}
        self.samples = 0
        self.max_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        """Start sampling."""
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = {"rss": 0, "pss": 0, "uss": 0}
            alive = 0
            for pid in process_tree(self.root):
                memory = process_memory(pid)
                if memory is None:
                    continue
                alive += 1
                for key in total:
                    total[key] += memory[key]
                self.hwm[pid] = max(self.hwm.get(pid, 0), memory["hwm"])
                if pid not in self.names:
                    try:
                        self.names[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:120].decode()
                    except OSError:
                        self.names[pid] = "?"
            if alive:
                self.samples += 1
                self.max_processes = max(self.max_processes, alive)
                for key in total:
                    self.peak[key] = max(self.peak[key], total[key])
            self._stop.wait(self.interval)


def run_measured(
    argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, interval: float = 0.05
) -> dict[str, Any]:
    """Run a command as a child process; wall time, the process tree's sampled peak memory and the per-process
    peaks (bytes)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    # drain the pipes in threads so a chatty child cannot block, then reap it with wait4 for its rusage
    chunks: dict[str, bytes] = {}

    def drain(name: str, stream: Any) -> None:
        chunks[name] = stream.read()

    threads = [threading.Thread(target=drain, args=(n, s)) for n, s in (("out", proc.stdout), ("err", proc.stderr))]
    for t in threads:
        t.start()
    with TreeSampler(proc.pid, interval) as sampler:
        _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    for t in threads:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    largest = usage.ru_maxrss * 1024  # the kernel's high-water mark of the largest process in the tree
    hwm = sorted(sampler.hwm.values(), reverse=True)
    return {
        "returncode": proc.returncode,
        "wall_s": round(elapsed, 3),
        "tree_peak_rss_bytes": sampler.peak["rss"],
        "tree_peak_pss_bytes": sampler.peak["pss"],
        "tree_peak_uss_bytes": sampler.peak["uss"],
        "per_process_peak_sum_bytes": max(largest, hwm[0] if hwm else 0) + sum(hwm[1:]),
        "largest_process_peak_rss_bytes": largest,
        "processes": {
            str(pid): {"cmd": sampler.names.get(pid, "?"), "vm_hwm_bytes": v} for pid, v in sampler.hwm.items()
        },
        "max_processes_at_once": sampler.max_processes,
        "samples": sampler.samples,
        "sample_interval_s": interval,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "stdout_tail": chunks.get("out", b"").decode(errors="replace")[-1500:],
        "stderr_tail": chunks.get("err", b"").decode(errors="replace")[-1500:],
    }


def python_baseline(interval: float) -> dict[str, Any]:
    """Memory of a child that only imports torch and malot_weights' tool module (the floor of any merge)."""
    code = "import time, torch, malot.tools, malot_weights.fisher; time.sleep(0.3)"  # sleep: let the sampler see it
    return run_measured([sys.executable, "-c", code], interval=interval)


def merge_with_malot(a: Path, b: Path, out: Path, interval: float) -> dict[str, Any]:
    """``malot tools run fisher_merge`` on the two folders (a linear merge: no Fishers)."""
    args = {"models": [str(a), str(b)], "output": str(out)}
    env = {**os.environ, "MALOT_PLUGINS": "weights", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    argv = [sys.executable, "-m", "malot", "tools", "run", "fisher_merge", "--json", "--args", json.dumps(args)]
    return run_measured(argv, env=env, interval=interval)


def default_mergekit_venv() -> Path:
    """``$XDG_CACHE_HOME/malot/mergekit-venv`` (``~/.cache/malot/mergekit-venv``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "malot" / "mergekit-venv"


def _clean_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"})
    return env


def ensure_mergekit(venv: Path, torch_pin: str, mergekit_pin: str) -> str | None:
    """Create mergekit's own virtual environment when it has no ``mergekit-yaml``; the error text if that fails."""
    if (venv / "bin" / "mergekit-yaml").is_file():
        return None
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"torch=={torch_pin}"],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"mergekit=={mergekit_pin}"],
    ]
    print(f"mergekit not found in {venv}: creating its environment (once; a few minutes):", file=sys.stderr)
    for step in steps:
        print("  $ " + " ".join(step), file=sys.stderr)
        done = subprocess.run(step, capture_output=True, text=True, check=False, env=_clean_env(venv))
        if done.returncode != 0:
            return f"`{' '.join(step)}` failed (exit {done.returncode}): {done.stderr[-800:]}"
    return None


def merge_with_mergekit(venv: Path, a: Path, b: Path, out: Path, work: Path, interval: float) -> dict[str, Any]:
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
    env = _clean_env(venv)
    argv = [str(exe), str(config), str(out), "--no-copy-tokenizer", "--quiet"]
    result = run_measured(argv, env=env, cwd=work, interval=interval)
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
    opts = benchmark_args(
        __doc__,
        default_out="merge_memory.json",
        seeds=1,
        threads=None,
        extra=[
            (["--size-mb"], {"type": float, "default": None, "help": "checkpoint size (default 1000, quick 128)"}),
            (["--mergekit-venv"], {"type": Path, "default": None, "help": "mergekit's virtual environment"}),
            (["--mergekit-torch"], {"default": "2.13.0", "help": "torch pinned in mergekit's environment"}),
            (["--mergekit-version"], {"default": "0.1.5", "help": "mergekit version to install"}),
            (["--no-mergekit"], {"action": "store_true", "help": "skip mergekit"}),
            (["--interval"], {"type": float, "default": 0.05, "help": "memory sampling interval (s)"}),
            (["--workdir"], {"type": Path, "default": None, "help": "scratch folder (default: a temporary one)"}),
            (["--keep"], {"action": "store_true", "help": "keep the checkpoints and outputs"}),
        ],
    )
    mode = "quick" if opts.quick else "full"
    size_mb = opts.size_mb or (128.0 if opts.quick else 1000.0)
    venv = opts.mergekit_venv or default_mergekit_venv()
    setup_error = None if opts.no_mergekit else ensure_mergekit(venv, opts.mergekit_torch, opts.mergekit_version)
    work = opts.workdir or Path(tempfile.mkdtemp(prefix="malot-merge-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        config = config_for_size(int(size_mb * 1e6), HIDDEN[mode])
        t0 = time.perf_counter()
        size_a = write_checkpoint(work / "a", config, seed=1)
        size_b = write_checkpoint(work / "b", config, seed=2)
        build_s = time.perf_counter() - t0
        baseline = python_baseline(opts.interval)
        ours = merge_with_malot(work / "a", work / "b", work / "merged-malot", opts.interval)
        if ours["returncode"] != 0:
            raise SystemExit(f"malot merge failed: {ours['stderr_tail']}")
        if opts.no_mergekit:
            mk: dict[str, Any] = {"error": "skipped (--no-mergekit)"}
        elif setup_error:
            mk = {"error": setup_error}
        else:
            mk = merge_with_mergekit(venv, work / "a", work / "b", work / "merged-mergekit", work, opts.interval)
        mk_ok = "error" not in mk and mk.get("returncode") == 0
        agreement = compare_outputs(work / "merged-malot", work / "merged-mergekit") if mk_ok else None
        figures = {
            "peak_memory_ratio": ours["tree_peak_rss_bytes"] / size_a,
            "peak_memory_upper_bound_ratio": ours["per_process_peak_sum_bytes"] / size_a,
            "time_ratio_vs_mergekit": ours["wall_s"] / mk["wall_s"] if mk_ok else None,
            "memory_ratio_vs_mergekit": ours["tree_peak_rss_bytes"] / mk["tree_peak_rss_bytes"] if mk_ok else None,
            "memory_upper_bound_ratio_vs_mergekit": (
                ours["per_process_peak_sum_bytes"] / mk["per_process_peak_sum_bytes"] if mk_ok else None
            ),
        }
        details: dict[str, Any] = {
            "mode": mode,
            "headline": "peak_memory_ratio and memory_ratio_vs_mergekit: sampled peak of the process tree's summed RSS",
            "checkpoint_bytes": [size_a, size_b],
            "checkpoint_config": {k: config[k] for k in ("hidden_size", "num_hidden_layers", "vocab_size")},
            "largest_tensor_bytes": 4 * max(_numel(s) for _, s in tensor_plan(config)),
            "build_s": round(build_s, 2),
            "python_torch_baseline": {k: v for k, v in baseline.items() if k not in ("stdout_tail", "stderr_tail")},
            "malot": {k: v for k, v in ours.items() if k != "stdout_tail"},
            "malot_command": "python -m malot tools run fisher_merge (heavy tool: runs in a worker process)",
            "malot_peak_pss_ratio": ours["tree_peak_pss_bytes"] / size_a,
            "malot_largest_process_peak_ratio": ours["largest_process_peak_rss_bytes"] / size_a,
            "mergekit": mk if not mk_ok else {k: v for k, v in mk.items() if k not in ("stdout_tail",)},
            "mergekit_venv": str(venv),
            "mergekit_command": "mergekit-yaml (merge_method: linear, dtype float32, default options)",
            "outputs_agree": agreement,
            "peak_under_1_5_gb": ours["tree_peak_rss_bytes"] < 1.5e9,
        }
        if mk_ok:
            details["pss_ratio_vs_mergekit"] = ours["tree_peak_pss_bytes"] / mk["tree_peak_pss_bytes"]
            details["largest_process_ratio_vs_mergekit"] = (
                ours["largest_process_peak_rss_bytes"] / mk["largest_process_peak_rss_bytes"]
            )
        else:
            details["mergekit_unavailable"] = mk.get("error") or mk.get("stderr_tail", "")[-600:]
    finally:
        if not opts.keep and opts.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    write_result(opts.out, figures, details=details)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


if __name__ == "__main__":
    main()
