"""The REPL pool with the replay double: header reuse, limits, and recovery from crashes, hangs and garbage."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

from malot.errors import BackendUnavailableError
from malot.lean.base import Snippet
from malot.lean.repl.header import split_header
from malot.lean.repl.pool import PoolQueueFullError, ReplPool
from malot.lean.repl.protocol import CommandResponse
from malot.testing.repl_replay import load_transcripts

DATA = Path(__file__).resolve().parents[1] / "data" / "repl_transcripts"
REPLAY = [sys.executable, "-m", "malot.testing.repl_replay", "--mode", "lookup", str(DATA)]


def recorded_checks() -> list[tuple[Snippet, dict[str, object], int]]:
    """Snippets made of recorded commands (header + body on that header's env), the recorded body response, and
    the body's line offset in the snippet."""
    out: list[tuple[Snippet, dict[str, object], int]] = []
    for t in load_transcripts([str(DATA)]):
        headers: dict[object, str] = {}  # env id -> the import-only command that produced it
        for cmd, resp in zip(t.commands, t.responses, strict=True):
            text = cmd.get("cmd")
            if not isinstance(text, str) or "env" not in resp:
                continue
            if set(cmd) == {"cmd"} and text.lstrip().startswith("import"):
                if split_header(text)[0] == text.strip():
                    headers[resp["env"]] = text.strip()
            elif set(cmd) == {"cmd", "env"} and cmd["env"] in headers:
                header = headers[cmd["env"]]
                code = header + "\n\n" + text
                if split_header(code)[0] == header:
                    out.append((Snippet(id=f"{t.name}:{len(out)}", code=code), resp, header.count("\n") + 2))
            elif set(cmd) == {"cmd"} and split_header(text)[0] == "":
                out.append((Snippet(id=f"{t.name}:{len(out)}", code=text), resp, 0))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_matches_recording(result_messages: list[object], recorded: dict[str, object], offset: int) -> None:
    expected = CommandResponse.model_validate(recorded)
    assert [m.data for m in result_messages] == [m.data for m in expected.messages]  # type: ignore[attr-defined]
    for got, want in zip(result_messages, expected.messages, strict=True):
        if want.pos is not None:
            assert got.pos.line == want.pos.line + offset  # type: ignore[attr-defined]


async def test_recorded_checks_through_the_pool_match_the_recordings() -> None:
    checks = recorded_checks()
    assert len(checks) >= 60 and any(offset > 0 for _, _, offset in checks)
    async with ReplPool(REPLAY, size=2, timeout=10) as pool:
        results = await pool.check([s for s, _, _ in checks])
        for (snippet, recorded, offset), result in zip(checks, results, strict=True):
            assert result.id == snippet.id and result.status == "ok", result.error
            assert_matches_recording(result.messages, recorded, offset)
            assert len(result.sorries) == len(CommandResponse.model_validate(recorded).sorries)
            assert result.cpu_s is not None and result.cpu_s >= 0  # from /proc, around the command


async def test_500_checks_with_faulty_processes_all_return_and_pool_recovers(tmp_path: Path) -> None:
    checks = recorded_checks()
    snippets = [Snippet(id=str(i), code=checks[i % len(checks)][0].code) for i in range(500)]
    argv = [*REPLAY, "--fault-rate", "0.1", "--fault-counter", str(tmp_path / "count"), "--fault-max-after", "8"]
    async with ReplPool(argv, size=3, timeout=4.0, max_commands=15, backoff=(0.01, 0.2)) as pool:
        first_pids = pool.pids()
        results = await pool.check(snippets)
        await pool.wait_ready()
        assert pool.alive_count == pool.size == 3
        final_pids = pool.pids()
        statuses = Counter(r.status for r in results)
    started = int((tmp_path / "count").read_text())
    assert len(results) == 500 and [r.id for r in results] == [s.id for s in snippets]
    assert set(statuses) <= {"ok", "crash", "timeout", "error"}
    # processes 10, 20, 30 (1-based) are faulty: a crash, a hang, then garbage output
    assert started >= 30 and statuses["crash"] >= 1 and statuses["timeout"] >= 1 and statuses["error"] >= 1
    assert statuses["ok"] >= 450
    assert pool.restarts >= started - 3
    for pid in first_pids + final_pids:
        assert not _alive(pid)


async def test_header_is_elaborated_once_per_process() -> None:
    checks = [c for c in recorded_checks() if c[0].code.startswith("import Mathlib\n\n")]
    assert checks
    snippets = [Snippet(id=str(i), code=checks[i % len(checks)][0].code) for i in range(20)]
    async with ReplPool(REPLAY, size=2, timeout=10) as pool:
        results = await pool.check(snippets)
        sent = sum(w.process.commands_sent for w in pool._workers.values())
        assert all(r.status == "ok" for r in results)
        assert sent <= 20 + 2  # 20 bodies, the header at most once per process
        assert all(list(w.headers) in ([], ["import Mathlib"]) for w in pool._workers.values())


async def test_prewarm_and_pickled_headers(tmp_path: Path) -> None:
    async with ReplPool(REPLAY, size=2, prewarm=["import Mathlib"], pickle_dir=tmp_path) as pool:
        assert all(w.headers.keys() == {"import Mathlib"} for w in pool._workers.values())
        pickles = [p for p in os.listdir(tmp_path) if p.endswith(".olean")]
        assert len(pickles) == 1  # pickled by the first REPL, unpickled by the second


async def test_queue_full_is_a_clear_error() -> None:
    async with ReplPool(REPLAY, size=1, queue_size=2) as pool:
        with pytest.raises(PoolQueueFullError, match="queue is full"):
            await pool.check([Snippet(id=str(i), code="def f := 1") for i in range(5)])


async def test_processes_are_recycled_after_max_commands() -> None:
    snippet = recorded_checks()[0][0]
    async with ReplPool(REPLAY, size=1, max_commands=3) as pool:
        first = pool.pids()
        results = await pool.check([snippet.model_copy(update={"id": str(i)}) for i in range(7)])
        await pool.wait_ready()
        assert all(r.status == "ok" for r in results)
        assert pool.recycled >= 2 and pool.pids() != first and pool.alive_count == 1
    assert not _alive(first[0])


async def test_cancelled_check_kills_and_replaces_the_process() -> None:
    async with ReplPool([*REPLAY, "--hang-after", "0"], size=1, timeout=60) as pool:
        [pid] = pool.pids()
        task = asyncio.create_task(pool.check([Snippet(id="x", code="def f := 1")]))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await pool.wait_ready()
        assert not _alive(pid) and pool.alive_count == 1 and pool.pids() != [pid]


async def test_memory_cap_and_slow_start() -> None:
    snippet = recorded_checks()[0][0]
    async with ReplPool([*REPLAY, "--memory-blowup-after", "0"], size=1, memory_limit_mb=400, timeout=20) as pool:
        [result] = await pool.check([snippet])
    assert result.status == "crash"
    async with ReplPool([*REPLAY, "--slow-start", "0.5"], size=1, timeout=20) as pool:
        [result] = await pool.check([snippet])
    assert result.status == "ok"


async def test_unstartable_repl_is_reported() -> None:
    with pytest.raises(BackendUnavailableError, match="no REPL process could start"):
        async with ReplPool(["/nonexistent/repl"], size=2):
            pass


async def test_session_gives_an_interactive_repl_then_recycles_it() -> None:
    from malot.lean.repl.protocol import ProofStepResponse

    argv = [sys.executable, "-m", "malot.testing.repl_replay", "--mode", "sequence", str(DATA / "core" / "proof_step")]
    async with ReplPool(argv, size=1) as pool:
        [pid] = pool.pids()
        async with pool.session() as repl:
            response = await repl.command("def f : Nat := by sorry", timeout=10)
            assert response.sorries and response.sorries[0].proof_state == 0
            step = await repl.tactic("apply Int.natAbs", 0, timeout=10)
            assert isinstance(step, ProofStepResponse) and step.goals
        await pool.wait_ready()
        assert pool.alive_count == 1 and pool.pids() != [pid]  # a session's REPL is not reused by checks


async def test_crash_loop_restarts_back_off() -> None:
    snippet = recorded_checks()[0][0]
    async with ReplPool([*REPLAY, "--crash-after", "0"], size=1, backoff=(0.05, 0.2)) as pool:
        results = [await pool.check([snippet]) for _ in range(5)]
        assert all(r[0].status == "crash" for r in results)
        # each fresh process dies on its first command: the waits grow 0.05, 0.1, 0.2, 0.2
        assert pool.backoff_waits == [0.05, 0.1, 0.2, 0.2]
        await pool.wait_ready()
        assert pool.alive_count == 1
