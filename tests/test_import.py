"""``import malot`` stays light: no torch, transformers or vllm, and a fast import."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "vllm", "faiss", "ray", "sentence_transformers", "matplotlib", "fastapi")

_PROBE = """
import json, sys, time
t = time.perf_counter()
import malot, malot.agents, malot.config, malot.errors, malot.cli.app
elapsed = time.perf_counter() - t
print(json.dumps({"elapsed": elapsed, "modules": sorted(sys.modules)}))
"""


def test_import_malot_is_light_and_fast() -> None:
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True)
    data = json.loads(proc.stdout)
    loaded = {m.split(".")[0] for m in data["modules"]}
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
    # generous bound for a loaded 2-core machine; typical is about 0.2 s
    assert data["elapsed"] < 3.0


def test_public_subpackages_import_without_heavy_dependencies() -> None:
    probe = (
        "import importlib, json, pkgutil, sys, malot\n"
        "names = [m.name for m in pkgutil.iter_modules(malot.__path__, 'malot.') if m.ispkg]\n"
        "for n in names: importlib.import_module(n)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    loaded = {m.split(".")[0] for m in json.loads(proc.stdout)}
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
