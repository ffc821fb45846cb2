"""Tactic-level proving: best-first search and truncate-and-resume (RMaxTS) over a proof session.

The searches (:mod:`~malot.provers.search.best_first`, :mod:`~malot.provers.search.rmaxts`) work on any
:class:`malot.lean.session.ProofSession` (REPL pool, LeanDojo, the toy environment in tests), propose tactics with a
policy LLM (:mod:`~malot.provers.search.policy`), share a tactic cache per problem
(:mod:`~malot.provers.search.cache`), and record their tree (:mod:`~malot.provers.search.tree`). The strategies
``best-first`` and ``rmaxts`` (:mod:`~malot.provers.search.strategy`) run them as workflows on the executor, with the
acceptance rule's whole-proof re-check as the final verdict.
"""

from __future__ import annotations

__all__: list[str] = []
