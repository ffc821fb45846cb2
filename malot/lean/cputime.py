"""CPU-seconds Lean spent, for budgets counted in Lean CPU time (not wall time, which grows under contention).

- A finished ``lean`` run: the shell wrapper :data:`TIMES_WRAPPER` prints its children's user and system time
  (POSIX ``times``) on stderr; :func:`split_times` takes that line back out.
- A long-lived REPL: :func:`process_tree_cpu` sums user + system time of a process and its descendants from
  ``/proc`` (Linux); the difference around one command is that command's CPU time.
"""

from __future__ import annotations

import os
import re

__all__ = ["TIMES_WRAPPER", "leaf_descendants", "process_tree_cpu", "split_times"]

#: ``sh -c TIMES_WRAPPER sh ARGV...`` runs ARGV, then prints the children's times to stderr, keeping the exit status.
TIMES_WRAPPER = '"$@"; rc=$?; times >&2; exit $rc'
_TIMES_RE = re.compile(r"^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def split_times(stderr: str) -> tuple[str, float | None]:
    """``stderr`` without the two ``times`` lines at its end, and the children's CPU seconds they report."""
    lines = stderr.rstrip("\n").split("\n")
    if len(lines) >= 2:
        m = _TIMES_RE.match(lines[-1].strip())
        if m and _TIMES_RE.match(lines[-2].strip()):
            cpu = int(m.group(1)) * 60 + float(m.group(2)) + int(m.group(3)) * 60 + float(m.group(4))
            return "\n".join(lines[:-2]), cpu
    return stderr, None


def _stat_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14 and 15 of the full line)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def process_tree_cpu(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and its living descendants; None where ``/proc`` cannot tell."""
    try:
        total = _stat_cpu(pid)
    except (OSError, IndexError, ValueError):
        return None
    stack = _children(pid)
    while stack:
        child = stack.pop()
        try:
            total += _stat_cpu(child)
        except (OSError, IndexError, ValueError):
            continue
        stack.extend(_children(child))
    return total


def leaf_descendants(pid: int) -> list[int]:
    """Descendants of ``pid`` that have no children themselves (Lean under its shell wrapper), from ``/proc``.

    Killing these first lets their parents reap them and exit normally, so no zombie is left to ``init``.
    """
    leaves: list[int] = []
    stack = _children(pid)
    while stack:
        child = stack.pop()
        grandchildren = _children(child)
        if grandchildren:
            stack.extend(grandchildren)
        else:
            leaves.append(child)
    return leaves
