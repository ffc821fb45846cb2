"""Decoding hooks (the ``malot.decoding`` entry-point group): discovery, failures, the logits-processor wrapper,
and a real third-party hook package (``tests/data/decoding_plugin``) installed with pip and used by ``malot prove``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from malot.config import Settings
from malot.llm import GenerationRequest, ScriptedLLM
from malot.llm.base import Capabilities
from malot.provers.decoding import (
    DecodingContext,
    DecodingSession,
    LogitsProcessorLLM,
    decoding_hook_statuses,
    load_decoding_hooks,
    reset_decoding_hooks,
    start_decoding_runs,
)

from .helpers import load_suite

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SOURCE = REPO / "tests" / "data" / "decoding_plugin"

BIAS_HOOK = """
    import click
    from malot.llm import ScriptedLLM
    from malot.llm.base import Capabilities

    class Bias:
        def __init__(self, amount):
            self.amount = amount
        def __call__(self, input_ids, scores):
            return scores

    class BiasRun:
        def __init__(self, amount):
            self.amount = amount
            self.closed = False
        async def adjust_llm(self, llm):
            caps = Capabilities(backend="scripted", logits_processors=True, prompt_logprobs=True)
            return llm or ScriptedLLM(["ok"], on_exhausted="repeat_last", scorer=lambda r: -1.0, capabilities=caps)
        def logits_processors(self):
            return [Bias(self.amount)]
        async def aclose(self):
            self.closed = True

    class BiasHook:
        name = "bias"
        def options(self):
            return [click.Option(["--bias-amount", "bias_amount"], type=float)]
        def start(self, values, context):
            amount = values.get("bias_amount")
            return None if amount is None else BiasRun(amount)

    hook = BiasHook()
"""

CLASHING_HOOK = """
    import click

    class Clash:
        name = "clash"
        def options(self):
            return [click.Option(["--model", "model"])]
        def start(self, values, context):
            return None

    def make():
        return Clash()
"""


@pytest.fixture(autouse=True)
def _fresh_hooks() -> Iterator[None]:
    reset_decoding_hooks()
    yield
    reset_decoding_hooks()


def _entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, modules: dict[str, tuple[str, str]]) -> list[Any]:
    """Write each (source, attribute) as a module in ``tmp_path`` and return entry points naming them."""
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = []
    for name, (source, attr) in modules.items():
        module = f"_decoding_hook_{name}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        eps.append(importlib.metadata.EntryPoint(name=name, value=f"{module}:{attr}", group="malot.decoding"))
    importlib.invalidate_caches()
    return eps


async def test_a_hooks_processors_reach_every_sampling_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    eps = _entry_points(tmp_path, monkeypatch, {"bias": (BIAS_HOOK, "hook")})
    hooks = load_decoding_hooks(eps)
    assert [h.name for h in hooks] == ["bias"]
    context = DecodingContext(Settings(), None, "g")
    assert start_decoding_runs({"bias_amount": None}, context) == []  # options not given: no run
    runs = start_decoding_runs({"bias_amount": 0.5}, context)
    async with DecodingSession(runs, Settings()) as session:
        assert isinstance(session.llm, LogitsProcessorLLM)
        inner = session.llm.llm
        assert isinstance(inner, ScriptedLLM)
        request = GenerationRequest(prompt="p")
        await session.llm.generate([request, GenerationRequest(prompt="q", score_continuation="x")])
        sampled, scored = inner.requests
        assert [p.amount for p in sampled.logits_processors] == [0.5]
        assert scored.logits_processors == [] and request.logits_processors == []  # callers' requests untouched
    assert runs[0].closed  # type: ignore[attr-defined]


async def test_processors_on_a_model_without_them_fail_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    eps = _entry_points(tmp_path, monkeypatch, {"bias": (BIAS_HOOK, "hook")})
    load_decoding_hooks(eps)
    (run,) = start_decoding_runs({"bias_amount": 1.0}, DecodingContext(Settings(), None, "g"))
    plain = ScriptedLLM(["ok"], capabilities=Capabilities(backend="scripted"))
    wrapped = LogitsProcessorLLM(plain, run.logits_processors())
    from malot.errors import CapabilityError

    with pytest.raises(CapabilityError, match="logits processors"):
        await wrapped.generate([GenerationRequest(prompt="p")])


def test_broken_and_clashing_hooks_are_reported_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    eps = _entry_points(
        tmp_path,
        monkeypatch,
        {
            "broken": ("raise ImportError('needs a package that is not installed')", "hook"),
            "clash": (CLASHING_HOOK, "make"),
            "bias": (BIAS_HOOK, "hook"),
        },
    )
    hooks = load_decoding_hooks(eps, reserved={"model", "--model"})
    assert [h.name for h in hooks] == ["bias"]
    statuses = {s.name: s for s in decoding_hook_statuses()}
    assert statuses["broken"].state == "failed" and "not installed" in statuses["broken"].error
    assert statuses["clash"].state == "failed" and "--model" in statuses["clash"].error
    assert statuses["bias"].state == "loaded" and statuses["bias"].options == ("--bias-amount",)


def test_the_allow_list_disables_hooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    eps = _entry_points(tmp_path, monkeypatch, {"bias": (BIAS_HOOK, "hook")})
    monkeypatch.setenv("MALOT_PLUGINS", "weights")
    assert load_decoding_hooks(eps) == []
    assert [s.state for s in decoding_hook_statuses()] == ["disabled"]


def test_the_core_never_names_a_plugin() -> None:
    plugin_packages = {p.name for p in REPO.glob("plugins/*/src/*") if p.is_dir() and not p.name.endswith("-info")}
    assert plugin_packages  # the fusion, weights, ... plugins
    names = "|".join(sorted(plugin_packages))
    pattern = re.compile(rf"^\s*(from|import)\s+({names})\b|import_module\(\s*[\"']({names})\b")
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for path in sorted((REPO / "malot").rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


@pytest.fixture(scope="module")
def installed_hook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example hook distribution installed by pip into a fresh target folder (with its dist-info)."""
    work = tmp_path_factory.mktemp("decoding_plugin")
    source = work / "src"
    shutil.copytree(PLUGIN_SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = work / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    yield target


def _malot(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    env.pop("MALOT_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "malot", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120,
        check=False,
    )  # fmt: skip


@pytest.mark.lean
@pytest.mark.slow
def test_an_installed_third_party_hook_drives_malot_prove(installed_hook: Path, tmp_path: Path, lean_exe: Path) -> None:
    shown = _malot(["prove", "--help"], installed_hook, tmp_path)
    assert shown.returncode == 0 and "--example-note" in shown.stdout, shown.stderr
    record = next(r for r in load_suite() if r["name"] == "or_swap")
    script = tmp_path / "script.jsonl"
    script.write_text(json.dumps(f"  {record['proof']}\n```") + "\n", encoding="utf-8")
    statement = tmp_path / "T.lean"
    statement.write_text(record["header"] + record["statement"] + "\n  sorry\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["prove", "--file", str(statement), "--theorem", "or_swap", "--model", f"script:{script}"]
    args += ["--strategy", "whole-proof", "--template", "deepseek-prover-v1.5", "--samples", "1"]
    args += ["--retriever", "none", "--lean", str(lean_exe), "--out", str(out), "--example-note", "hello"]
    proved = _malot(args, installed_hook, tmp_path)
    assert proved.returncode == 0, proved.stderr
    events = [json.loads(line) for line in (out / "trace.jsonl").read_text(encoding="utf-8").splitlines()]
    notes = [e["data"] for e in events if e["type"] == "note" and "example_note" in e.get("data", {})]
    assert notes == [{"example_note": "hello", "generations": 1}]


def test_doctor_reports_each_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from malot.tools.doctor import checks

    eps = _entry_points(
        tmp_path, monkeypatch, {"broken": ("raise ImportError('no such package')", "hook"), "bias": (BIAS_HOOK, "hook")}
    )
    load_decoding_hooks(eps)
    found = {c.name: c for c in checks(Settings()) if c.name.startswith("decoding hook")}
    assert found["decoding hook bias"].status == "ok" and "--bias-amount" in found["decoding hook bias"].detail
    assert found["decoding hook broken"].status == "error" and "no such package" in found["decoding hook broken"].detail
