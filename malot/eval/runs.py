"""Creating and resuming runs: the run folder, its id, the settings stored with it.

A run is a folder holding ``results.sqlite``. :func:`create_run` makes one for a dataset selection and the
effective settings; :func:`resume_settings` gives back the settings a run was created with, letting only
operational keys (how to reach Lean, concurrency, timeouts) change, so a resumed run keeps its model, strategy
and budget and its results stay comparable.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from malot.config import Settings
from malot.errors import ConfigError
from malot.eval.datasets import Dataset
from malot.eval.meta import collect_run_meta
from malot.eval.solver import DEFAULT_SOLVER
from malot.eval.store import ResultsStore

__all__ = ["RESUMABLE_PREFIXES", "create_run", "default_run_dir", "resume_settings"]

#: Settings keys a resumed run may change (everything else is fixed when the run is created).
RESUMABLE_PREFIXES: tuple[str, ...] = (
    "lean.",
    "executor.",
    "output.",
    "llm.request_timeout_s",
    "llm.max_retries",
    "llm.max_concurrency",
    "llm.api_key_env",
)


def default_run_dir(settings: Settings, dataset: str, strategy: str) -> Path:
    """``<output.dir>/<dataset>-<strategy>-<UTC time>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{dataset}-{strategy}")
    return Path(settings.output.dir) / f"{safe}-{stamp}"


def create_run(
    dataset: Dataset,
    settings: Settings,
    run_dir: str | Path,
    *,
    run_id: str | None = None,
    solver: str | None = None,
    first_success: bool = False,
    backend: str = "local",
) -> ResultsStore:
    """Create a run folder with every problem of ``dataset`` pending and the metadata recorded."""
    folder = Path(run_dir)
    if solver in (None, DEFAULT_SOLVER):
        from malot.provers.api import resolve_setup

        strategy = resolve_setup(settings).strategy  # a model preset may choose the strategy
    else:
        strategy = f"custom:{solver}"
    meta = collect_run_meta(
        settings,
        backend=backend,
        solver=solver or DEFAULT_SOLVER,
        extra={"first_success": first_success, "dataset_source": dataset.source},
    )
    samples = settings.prover.samples
    if settings.budget.samples is not None:
        samples = min(samples, settings.budget.samples)
    return ResultsStore.create(
        folder,
        run_id=run_id or folder.name,
        dataset=dataset.name,
        problems=dataset.problems,
        defects=dataset.defects,
        strategy=strategy,
        model=settings.llm.model,
        samples=samples,
        settings=settings.model_dump(mode="json"),
        meta=meta,
    )


def resume_settings(store: ResultsStore, overrides: Mapping[str, Any]) -> Settings:
    """The run's stored settings with ``overrides`` applied; overriding a fixed key to a new value is an error."""
    stored: dict[str, Any] = store.run_info()["settings"]
    settings = Settings.model_validate(stored)
    data = settings.model_dump(mode="json")
    fixed: list[str] = []
    for key, value in overrides.items():
        if value is None:
            continue
        current: Any = data
        for part in key.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if key.startswith(RESUMABLE_PREFIXES):
            _set(data, key, value)
        elif _normal(current) != _normal(value):
            fixed.append(f"{key} (run has {current!r}, got {value!r})")
    if fixed:
        raise ConfigError(
            "a resumed run keeps the model, strategy, budget and dataset it was created with; cannot change "
            + "; ".join(fixed),
            hint="drop those flags, or start a new run with --out",
        )
    return Settings.model_validate(data)


def _normal(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = str(value) if isinstance(value, Path) else value
