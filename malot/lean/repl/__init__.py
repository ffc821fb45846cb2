"""The leanprover-community REPL: wire models (``protocol``), one process (``process``), a pool (``pool``)."""

from __future__ import annotations

from malot.lean.repl.pool import PoolQueueFullError, ReplPool
from malot.lean.repl.process import ReplCrashedError, ReplProcess, ReplProtocolError, ReplTimeoutError

__all__ = ["PoolQueueFullError", "ReplCrashedError", "ReplPool", "ReplProcess", "ReplProtocolError", "ReplTimeoutError"]
