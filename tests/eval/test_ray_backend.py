"""The Ray backend on a private local Ray instance with 2 workers gives the same results as the local runner."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from malot.config import load_settings
from malot.eval.datasets import load_dataset
from malot.eval.ray_backend import RayBackend
from malot.eval.runner import EvalRunner, LocalBackend
from malot.eval.runs import create_run
from malot.eval.solver import load_solver_factory
from malot.eval.store import ResultsStore

SUITE = Path(__file__).resolve().parents[1] / "data" / "prelude_suite" / "prelude_suite.jsonl"
SOLVER = "tests.eval.toy_solver:toy_solver"


def _results(store: ResultsStore) -> tuple[dict[str, tuple[int, int, bool]], list[tuple[str, int, bool]]]:
    rows = {r.name: (r.n, r.c, r.solved) for r in store.problem_rows()}
    attempts = sorted((a["problem"], a["sample"], a["verified"]) for a in store.attempts(final_only=True))
    return rows, attempts


@pytest.mark.slow
def test_ray_backend_with_two_workers_matches_the_local_runner(tmp_path: Path) -> None:
    settings = load_settings(overrides={"prover.samples": 3, "llm.model": "toy"})
    data = load_dataset(SUITE)
    local = create_run(data, settings, tmp_path / "local", solver=SOLVER)
    asyncio.run(EvalRunner(local, settings, LocalBackend(load_solver_factory(SOLVER), jobs=4)).run())

    remote = create_run(data, settings, tmp_path / "ray", solver=SOLVER, backend="ray")
    backend = RayBackend("local", solver=SOLVER, workers=2, jobs_per_worker=3, init_kwargs={"num_cpus": 2})
    summary = asyncio.run(EvalRunner(remote, settings, backend).run())
    assert summary.done == 40 and summary.finished_now == 40
    assert len(backend.worker_pids) == 2  # both workers solved problems
    assert _results(remote) == _results(local)
    assert remote.sessions()[0]["backend"] == "ray"
