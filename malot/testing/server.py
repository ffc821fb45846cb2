"""Test utilities for the HTTP API: run ``malot serve`` in a subprocess on loopback, and drive load against it.

Used by the server tests and by ``benchmarks/serve_load.py``. Only ever targets 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from malot.errors import MalotError

__all__ = [
    "BurstResult",
    "JobOutcomes",
    "ServerProcess",
    "collect_outcomes",
    "free_port",
    "store_counts",
    "submit_burst",
    "wait_all_finished",
    "wait_for_store",
]

TERMINAL = frozenset({"proved", "not_proved", "failed", "cancelled"})


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``malot [--config FILE] serve --port P ...`` as a child process in its own process group."""

    def __init__(
        self, args: Sequence[str], *, config: str | Path | None = None, port: int | None = None, log: Path
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = list(args)
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> ServerProcess:
        """Start the server and wait until ``/health`` answers."""
        argv = [sys.executable, "-m", "malot"]
        if self.config is not None:
            argv += ["--config", str(self.config)]
        argv += ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning", *self.args]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise MalotError(f"malot serve exited with {self.proc.returncode}: {self._tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise MalotError(f"malot serve did not answer /health within {timeout}s: {self._tail()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the server's process group and wait for it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), then forcefully if needed."""
        self.kill(signal.SIGTERM)

    def _tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


@dataclass
class BurstResult:
    """What a burst of concurrent submissions got back."""

    accepted: list[str] = field(default_factory=list)
    rejected_429: int = 0
    retry_after: list[int] = field(default_factory=list)
    other: list[int] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0


async def submit_burst(
    url: str, bodies: Sequence[dict[str, Any]], *, headers: dict[str, str] | None = None
) -> BurstResult:
    """POST every body to ``/v1/jobs`` at once; every request must get an answer."""
    result = BurstResult()
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits, headers=headers) as client:

        async def one(body: dict[str, Any]) -> None:
            started = time.perf_counter()
            reply = await client.post("/v1/jobs", json=body)
            result.latencies_ms.append(1000 * (time.perf_counter() - started))
            if reply.status_code == 202:
                result.accepted.append(reply.json()["job_id"])
            elif reply.status_code == 429:
                result.rejected_429 += 1
                result.retry_after.append(int(reply.headers.get("Retry-After", "0")))
            else:
                result.other.append(reply.status_code)

        started = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        result.wall_s = time.perf_counter() - started
    return result


async def wait_all_finished(
    url: str, job_ids: Sequence[str], *, timeout_s: float = 300.0, headers: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Poll until every job is finished; return the final views by id (raises on timeout)."""
    terminal = {"proved", "not_proved", "failed", "cancelled"}
    views: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=url, timeout=30.0, headers=headers) as client:
        pending = list(job_ids)
        while pending:
            if time.monotonic() > deadline:
                raise MalotError(f"{len(pending)} jobs did not finish within {timeout_s}s")
            still = []
            for job_id in pending:
                reply = await client.get(f"/v1/jobs/{job_id}")
                view = reply.json()
                if reply.status_code == 200 and view["status"] in terminal:
                    views[job_id] = view
                else:
                    still.append(job_id)
            pending = still
            if pending:
                await asyncio.sleep(0.2)
    return views


def store_counts(path: str | Path) -> dict[str, int]:
    """Jobs by status in a server's job store, read from the SQLite file (read-only; works while the server
    runs and after it was killed), plus ``requeued``: jobs with a ``requeued`` event (running at a restart)."""
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True, timeout=30.0)
    try:
        counts = {status: 0 for status in ("queued", "running", *sorted(TERMINAL))}
        for status, n in conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status"):
            counts[str(status)] = int(n)
        (requeued,) = conn.execute("SELECT COUNT(DISTINCT job_id) FROM events WHERE type = 'requeued'").fetchone()
        counts["requeued"] = int(requeued)
        return counts
    finally:
        conn.close()


async def wait_for_store(
    path: str | Path, ready: Callable[[dict[str, int]], bool], *, timeout_s: float = 60.0
) -> dict[str, int]:
    """Poll the job store until ``ready(store_counts(path))`` holds; return those counts (raises on timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            counts = store_counts(path)
        except sqlite3.OperationalError:  # not created yet
            counts = {}
        if counts and ready(counts):
            return counts
        if time.monotonic() > deadline:
            raise MalotError(f"the job store never reached the awaited state within {timeout_s}s (last: {counts})")
        await asyncio.sleep(0.02)


@dataclass
class JobOutcomes:
    """Where accepted jobs ended: final status by id, and the real losses (``vanished``: the server does not know
    the job; ``stuck``: still queued or running when the wait ended)."""

    status: dict[str, str] = field(default_factory=dict)
    vanished: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        """Accepted jobs that never reached a final state."""
        return len(self.vanished) + len(self.stuck)

    def count(self, status: str) -> int:
        """Jobs that finished with ``status``."""
        return sum(1 for s in self.status.values() if s == status)


async def collect_outcomes(
    url: str, job_ids: Sequence[str], *, timeout_s: float = 300.0, headers: dict[str, str] | None = None
) -> JobOutcomes:
    """Poll until every job is finished or ``timeout_s`` passed; never raises for a missing or unfinished job,
    it counts it (see :class:`JobOutcomes`)."""
    out = JobOutcomes()
    deadline = time.monotonic() + timeout_s
    pending = list(job_ids)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, headers=headers) as client:
        while pending:
            still = []
            for job_id in pending:
                reply = await client.get(f"/v1/jobs/{job_id}")
                if reply.status_code == 404:
                    out.vanished.append(job_id)
                    continue
                status = reply.json().get("status") if reply.status_code == 200 else None
                if status in TERMINAL:
                    out.status[job_id] = str(status)
                else:
                    still.append(job_id)
            pending = still
            if pending and time.monotonic() > deadline:
                out.stuck = pending
                break
            if pending:
                await asyncio.sleep(0.2)
    return out
