"""``malot doctor`` checks for the HTTP API: is the ``serve`` extra installed, and where would jobs be stored."""

from __future__ import annotations

import importlib.metadata
import importlib.util

from malot.config import Settings
from malot.doctor import Check


def checks(settings: Settings) -> list[Check]:
    """Whether ``malot serve`` can run here."""
    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        return [
            Check(
                "server", "malot serve", "missing", f"{', '.join(missing)} not installed", "pip install 'malot[serve]'"
            )
        ]
    versions = ", ".join(f"{m} {importlib.metadata.version(m)}" for m in ("fastapi", "uvicorn"))
    store = settings.output.dir / "server" / "jobs.sqlite"
    return [Check("server", "malot serve", "ok", f"{versions}; jobs stored in {store}")]
