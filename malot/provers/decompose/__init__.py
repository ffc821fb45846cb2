"""Lemma decomposition (``--strategy decompose``) and APOLLO-style repair, built on the prover agents.

:mod:`~malot.provers.decompose.skeleton` finds ``sorry`` holes, reads their goals from the verifier and turns them
into lemmas; :mod:`~malot.provers.decompose.engine` proves lemmas (automation, sub-strategy, recursion, cache);
:mod:`~malot.provers.decompose.strategy` is the workflow; :mod:`~malot.provers.decompose.repair` cuts a failed
proof at its failing steps.
"""
