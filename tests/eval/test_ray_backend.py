"""The Ray backend on a private local Ray instance with 2 workers gives the same results as the local runner.

One Ray instance serves the whole test (starting Ray is slow on 2 cores): first with the toy solver (a test double
of the solver seam, whose verdicts are fixed per sample, so attempts compare exactly), then with the real prover,
a scripted LLM per worker (two ``script:`` endpoints) and the real Lean 4.35.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from malot.config import Settings, load_settings
from malot.eval.datasets import load_dataset
from malot.eval.ray_backend import RayBackend
from malot.eval.report import summarize
from malot.eval.runner import EvalRunner, LocalBackend
from malot.eval.runs import create_run
from malot.eval.solver import load_solver_factory
from malot.eval.store import ResultsStore
from tests.eval.test_prelude_eval import EXPECTED_PASS, ROWS, SUITE, expected_solved, write_script

TOY = "tests.eval.toy_solver:toy_solver"


def _rows(store: ResultsStore) -> dict[str, tuple[int, int, bool]]:
    return {r.name: (r.n, r.c, r.solved) for r in store.problem_rows()}


def _attempts(store: ResultsStore) -> list[tuple[str, int, bool]]:
    return sorted((a["problem"], a["sample"], a["verified"]) for a in store.attempts(final_only=True))


def _ray_run(
    tmp: Path, settings: Settings, solver: str | None, models: list[str], count: int
) -> tuple[ResultsStore, RayBackend]:
    data = load_dataset(SUITE).select(count=count)
    remote = create_run(data, settings, tmp / "ray", solver=solver, backend="ray")
    backend = RayBackend("local", solver=solver, workers=2, jobs_per_worker=3, worker_models=models)
    summary = asyncio.run(EvalRunner(remote, settings, backend).run())
    assert summary.done == count and summary.finished_now == count
    assert len(backend.workers_seen) + len(backend.lost_workers) >= 2  # both workers got problems
    assert remote.sessions()[0]["backend"] == "ray"
    return remote, backend


@pytest.mark.slow
@pytest.mark.lean
def test_ray_backend_with_two_workers_matches_the_local_runner(
    tmp_path: Path, lean_exe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    # one toy worker process dies on its first meeting with imp_trans; the other worker takes the problem over
    monkeypatch.setenv("TOY_SOLVER_DIE_ONCE_ON", f"imp_trans:{os.getpid()}:{tmp_path / 'died'}")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        toy = load_settings(overrides={"prover.samples": 3, "llm.model": "toy"})
        local = create_run(load_dataset(SUITE), toy, tmp_path / "local", solver=TOY)
        asyncio.run(EvalRunner(local, toy, LocalBackend(load_solver_factory(TOY), jobs=4)).run())
        remote, backend = _ray_run(tmp_path / "toy", toy, TOY, [], 40)
        assert _rows(remote) == _rows(local) and _attempts(remote) == _attempts(local)
        assert (tmp_path / "died").exists() and len(backend.lost_workers) == 1

        # the real prover: per problem the same (n, c) as the local runner gets in test_prelude_eval.py
        script = write_script(tmp_path / "a.json")
        other = shutil.copy(script, tmp_path / "b.json")  # a second endpoint with the same answers
        settings = load_settings(
            overrides={
                "llm.model": f"script:{script}",
                "prover.strategy": "whole-proof",
                "prover.samples": 4,
                "lean.lean_path": str(lean_exe),
                "lean.backend": "file",
                "lean.pool_size": 1,
            }
        )
        remote, backend = _ray_run(tmp_path / "prover", settings, None, [f"script:{script}", f"script:{other}"], 20)
        assert _rows(remote) == {row["name"]: (4, i % 5, i % 5 > 0) for i, row in enumerate(ROWS[:20])}
        assert {n for n, (_, _, solved) in _rows(remote).items() if solved} == expected_solved() & set(_rows(remote))
        assert summarize(remote)["pass_at_k"] == pytest.approx(EXPECTED_PASS)
        assert len(backend.workers_seen) == 2 and not backend.lost_workers
        endpoints = {a["flags"]["llm"] for a in remote.attempts()}
        assert endpoints == {f"script:{script}", f"script:{other}"}  # each worker used its own endpoint
    finally:
        ray.shutdown()
