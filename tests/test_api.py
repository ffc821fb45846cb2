"""The stable Python API: the pinned surface of ``import malot``, async and sync forms, and embedding."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

import malot
from malot.lean.file_backend import LeanFileVerifier
from malot.llm.fake import ScriptedLLM
from tests.provers.helpers import load_suite

REPO = Path(__file__).resolve().parent.parent
SUITE = load_suite()

PINNED = [
    "AcceptanceRule",
    "CheckResult",
    "MalotError",
    "Problem",
    "ProofResult",
    "Prover",
    "Settings",
    "TargetTheorem",
    "Verifier",
    "__version__",
    "load_llm",
    "load_settings",
    "load_verifier",
    "prove",
    "prove_sync",
    "verify",
    "verify_sync",
]


def test_public_api_is_pinned() -> None:
    assert sorted(malot.__all__) == PINNED
    for name in PINNED:
        assert getattr(malot, name) is not None, name
    assert set(PINNED) <= set(dir(malot))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = malot.nope  # type: ignore[attr-defined]


def _settings(**extra: object) -> malot.Settings:
    data = {
        "prover": {"strategy": "whole-proof", "template": "deepseek-prover-v1.5", "samples": 1},
        "retrieval": {"retriever": "none", "k": 0},
        "lean": {"backend": "file", "sandbox": "off"},
        **extra,
    }
    return malot.Settings.model_validate(data)


def _script(records: list[dict[str, str]]) -> dict[str, str]:
    return {f"theorem {r['name']} ": f"  {r['proof']}\n```" for r in records}


@pytest.mark.lean
def test_prove_sync_and_verify_sync_with_real_lean(lean_exe: Path) -> None:
    record = SUITE[2]
    problem = malot.Problem(name=record["name"], header=record["header"], statement=record["statement"])
    settings = _settings(lean={"backend": "file", "sandbox": "off", "lean_path": str(lean_exe)})
    result = malot.prove_sync(problem, settings=settings, llm=ScriptedLLM(_script([record])))
    assert isinstance(result, malot.ProofResult) and result.proved
    assert result.proof is not None
    verdict = malot.verify_sync(
        header=record["header"], statement=record["statement"], proof=record["proof"], lean=lean_exe
    )
    assert isinstance(verdict, malot.CheckResult) and verdict.accepted
    rejected = malot.verify_sync(
        header=record["header"], statement=record["statement"], proof=record["wrong_proof"], lean=lean_exe
    )
    assert not rejected.accepted and rejected.no_errors is False


@pytest.mark.lean
async def test_prover_embedded_in_an_asyncio_app(lean_exe: Path) -> None:
    records = SUITE[:6]
    ticks = 0
    stop = asyncio.Event()

    async def app_work() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    worker = asyncio.create_task(app_work())
    async with (
        LeanFileVerifier(lean_exe, workers=2, sandbox="off") as verifier,
        malot.Prover(_settings(), llm=ScriptedLLM(_script(records)), verifier=verifier) as prover,
    ):
        problems = [malot.Problem(name=r["name"], header=r["header"], statement=r["statement"]) for r in records]
        results = await asyncio.gather(*(prover.prove(p) for p in problems))
    stop.set()
    await worker
    assert all(r.proved for r in results)
    assert ticks > 0  # the host app kept running while proofs were searched
    with pytest.raises(malot.MalotError, match="inside a running event loop"):
        malot.prove_sync("theorem t : True := by")


@pytest.mark.lean
def test_embedding_example_runs(lean_exe: Path, tmp_path: Path) -> None:
    records = SUITE[:3]
    script = tmp_path / "script.json"
    script.write_text(json.dumps(_script(records)))
    config = tmp_path / "malot.toml"
    config.write_text(
        '[prover]\nstrategy = "whole-proof"\ntemplate = "deepseek-prover-v1.5"\nsamples = 1\n'
        '[retrieval]\nretriever = "none"\nk = 0\n[lean]\nsandbox = "off"\n'
    )
    statements = [r["header"] + r["statement"] for r in records]
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "embed_prover.py"), "--config", str(config), "--model",
         f"script:{script}", "--lean", str(lean_exe), *statements],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    output = proc.stdout[proc.stdout.index("[") :]
    assert sorted(r["problem"] for r in json.loads(output) if r["proved"]) == sorted(r["name"] for r in records)
