"""The names of the proving strategies and where each is defined, without importing any of them.

Configuration, the CLI and the HTTP API validate ``--strategy`` against :func:`strategy_names` while staying light;
:func:`malot.provers.strategies.make_strategy` imports the one strategy a run uses. A new built-in strategy adds one
line to :data:`BUILTIN_STRATEGIES`: its name and ``module:factory``, where the factory is called as
``factory(rounds=..., settings=...)`` (``settings`` is the :class:`malot.config.Settings` or ``None``) and returns a
:class:`malot.provers.strategies.Strategy`.
"""

from __future__ import annotations

__all__ = ["BUILTIN_STRATEGIES", "DEFAULT_STRATEGY", "strategy_names"]

#: Strategy name -> ``module:factory`` (imported only when a run uses it).
BUILTIN_STRATEGIES: dict[str, str] = {
    "agentic": "malot.provers.agentic:Agentic.from_settings",
    "best-first": "malot.provers.search.strategy:BestFirst.from_settings",
    "decompose": "malot.provers.decompose.strategy:Decompose.from_settings",
    "ma-lot": "malot.provers.strategies:MALoT.from_settings",
    "rmaxts": "malot.provers.search.strategy:RMaxTS.from_settings",
    "whole-proof": "malot.provers.strategies:WholeProof.from_settings",
}

#: The strategy used when none is chosen.
DEFAULT_STRATEGY = "ma-lot"


def strategy_names() -> tuple[str, ...]:
    """Every strategy name ``--strategy`` accepts."""
    return tuple(BUILTIN_STRATEGIES)
