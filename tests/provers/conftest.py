"""Fixtures of the prover tests (helpers live in :mod:`tests.provers.helpers`)."""

from __future__ import annotations

from .helpers import lean_verifier

__all__ = ["lean_verifier"]
