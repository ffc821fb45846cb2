"""CodeGen on real vLLM (CPU build) through the GPT-J conversion: the in-process engine and a local server.

Greedy completions (plain and infill prompts) must equal transformers' CodeGen token for token. One server serves
the module; it is launched in the background when the module starts, while the in-process engine test runs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from malot.cli.app import main
from malot.config import LLMSettings, Settings, VllmEngineSettings
from malot.llm import GenerationRequest, GenerationResult, InfillPrompt, SamplingParams, load_llm
from malot.llm.convert.codegen import MANIFEST_NAME
from malot.llm.hf_backend import TransformersLLM
from malot.llm.vllm_backend import VllmLLM
from malot.provers import Problem
from malot.testing.vllm_server import LocalVllmServer, ServerStartError

pytestmark = pytest.mark.slow

CACHE = Path(__file__).resolve().parent.parent / ".cache"
GREEDY = SamplingParams(temperature=0.0, max_tokens=16)
REQUESTS = [
    GenerationRequest(prompt="theorem foo (a : ℕ) :", params=GREEDY),
    GenerationRequest(prompt="def f(x):\n    return", params=GREEDY),
    GenerationRequest(prompt=InfillPrompt(prefix="def f(x):\n    ", suffix="\n    return y"), params=GREEDY),
    GenerationRequest(
        prompt=InfillPrompt(prefix="theorem t (a b : ℕ) : a + b = b + a := by\n  ", suffix=""), params=GREEDY
    ),
]
PROBLEM = Problem.from_statement(
    "prelude\ntheorem imp_trans (p q r : Prop) (hpq : p → q) (hqr : q → r) : p → r :=",
    informal="Implication is transitive.",
)


@pytest.fixture(scope="module")
def codegen_cache() -> Iterator[Path]:
    """The conversion cache of this module (a fresh folder, so the first use converts)."""
    root = CACHE / "codegen-gptj-tests"
    shutil.rmtree(root, ignore_errors=True)
    old = os.environ.get("MALOT_CODEGEN_CACHE")
    os.environ["MALOT_CODEGEN_CACHE"] = str(root)
    try:
        yield root
    finally:
        if old is None:
            os.environ.pop("MALOT_CODEGEN_CACHE", None)
        else:
            os.environ["MALOT_CODEGEN_CACHE"] = old


@pytest.fixture(scope="module")
def hf_reference(tiny_codegen: Path) -> list[GenerationResult]:
    """transformers' CodeGen answers to REQUESTS (greedy), computed once."""

    async def run() -> list[GenerationResult]:
        async with TransformersLLM(tiny_codegen) as hf:
            return await hf.generate(REQUESTS)

    return asyncio.run(run())


@pytest.fixture(scope="module")
def _codegen_server(tiny_codegen: Path, codegen_cache: Path) -> Iterator[LocalVllmServer]:
    server = LocalVllmServer(tiny_codegen, served_name="codegen", log_path=CACHE / "vllm-codegen-server.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module", autouse=True)
def _launch_early(_codegen_server: LocalVllmServer) -> None:
    """Start the server's boot (and the conversion) before the first test of the module."""
    _codegen_server.launch()


def texts(results: list[GenerationResult]) -> list[str]:
    return [r.completions[0].text for r in results]


async def test_in_process_engine_matches_transformers_and_proves(
    tiny_codegen: Path,
    hf_reference: list[GenerationResult],
    lean_exe: Path,
    _codegen_server: LocalVllmServer,
) -> None:
    from malot.provers import Prover

    served = Path(_codegen_server.served_model or "")
    assert served.parent.name == "codegen-gptj-tests" and (served / MANIFEST_NAME).is_file()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    settings = LLMSettings(
        model=str(tiny_codegen),
        backend="vllm",
        vllm=VllmEngineSettings(
            dtype="float32", max_model_len=512, enforce_eager=True, engine_args={"distributed_executor_backend": "uni"}
        ),
    )
    llm = load_llm(settings)
    assert isinstance(llm, VllmLLM)
    async with llm:
        assert llm.served_model == str(served)  # the server's conversion, reused from the cache
        assert llm.capabilities.infill and any("served as GPT-J" in n for n in llm.capabilities.notes)
        results = await llm.generate(REQUESTS)
        assert texts(results) == texts(hf_reference)
        assert [r.completions[0].tokens for r in results] == [r.completions[0].tokens for r in hf_reference]
        assert [r.completions[0].finish_reason for r in results] == [
            r.completions[0].finish_reason for r in hf_reference
        ]
        # the API end to end on this engine: CodeGen2's preset (infill template, whole-proof) against real Lean
        prover_settings = Settings.model_validate(
            {
                "llm": {"model": str(tiny_codegen), "backend": "vllm"},
                "lean": {"lean_path": str(lean_exe), "sandbox": "off"},
                "prover": {"preset": "codegen2-1b", "samples": 2, "max_tokens": 24, "seed": 0},
                "retrieval": {"retriever": "none"},
            }
        )
        async with Prover(prover_settings, llm=llm) as prover:
            result = await prover.prove(PROBLEM)
    assert result.template == "codegen2-infill" and len(result.attempts) == 2
    assert result.usage["tokens_out"] > 0 and all(a.verdicts for a in result.attempts)


async def test_server_matches_transformers(
    _codegen_server: LocalVllmServer, hf_reference: list[GenerationResult]
) -> None:
    try:
        _codegen_server.wait_ready()
    except ServerStartError as exc:
        pytest.fail(f"could not start the local vLLM server: {exc}", pytrace=False)
    async with load_llm(_codegen_server.model_string, infill=True) as llm:
        results = await llm.generate(REQUESTS)
    assert texts(results) == texts(hf_reference)
    assert [r.completions[0].tokens for r in results] == [r.completions[0].tokens for r in hf_reference]


def test_prove_cli_with_vllm_converts_codegen(
    tmp_path: Path, tiny_codegen: Path, codegen_cache: Path, lean_exe: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the CLI path up to the engine: --backend vllm reaches the conversion, which refuses a source without a
    # tokenizer in one line (the full run with a good model is test_in_process_engine_matches_transformers_and_proves)
    broken = tmp_path / "codegen2-1B_P"
    broken.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_codegen / name, broken / name)
    argv = ["prove", "theorem t : True :=", "--preset", "codegen2-1b", "--backend", "vllm", "--model", str(broken)]
    code = main([*argv, "--lean", str(lean_exe), "--json", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot serve CodeGen checkpoint" in err and "has no tokenizer" in err
    assert "Traceback" not in err
    assert not any(p.name.startswith("codegen2-1B_P") for p in codegen_cache.iterdir())
