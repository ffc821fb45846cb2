"""Proving strategies built from agents, an LLM and a Lean verifier: MA-LoT and the whole-proof baseline.

- :class:`Problem` - what to prove (from MiniF2F, a statement string, or a ``.lean`` file).
- :class:`MALoT`, :class:`WholeProof` - the strategies, each a :class:`malot.agents.Workflow` run by the executor.
- :class:`Prover` (async context manager owning LLM + verifier) and :func:`prove` - the Python API, answering
  with a :class:`ProofResult`.
- Prompt templates per model family (:func:`load_template`) and presets bundling model, template and sampling
  (:data:`PRESETS`, default :data:`DEFAULT_PRESET`).
"""

from __future__ import annotations

from malot.provers.agents import (
    CorrectorAgent,
    LoTProverAgent,
    ProofCandidate,
    ProofFeedback,
    ProverDeps,
    Sampling,
    VerifierAgent,
    WholeProofAgent,
)
from malot.provers.api import AttemptSummary, ProofResult, Prover, prove, resolve_setup, trace_summary
from malot.provers.extraction import Extraction, extract_lean
from malot.provers.presets import DEFAULT_PRESET, PRESETS, Preset, get_preset, preset_for_model
from malot.provers.problem import Problem, load_problem
from malot.provers.strategies import STRATEGIES, MALoT, Strategy, WholeProof, make_strategy
from malot.provers.templates import ModelTemplate, available_templates, load_template

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "STRATEGIES",
    "AttemptSummary",
    "CorrectorAgent",
    "Extraction",
    "LoTProverAgent",
    "MALoT",
    "ModelTemplate",
    "Preset",
    "Problem",
    "ProofCandidate",
    "ProofFeedback",
    "ProofResult",
    "Prover",
    "ProverDeps",
    "Sampling",
    "Strategy",
    "VerifierAgent",
    "WholeProof",
    "WholeProofAgent",
    "available_templates",
    "extract_lean",
    "get_preset",
    "load_problem",
    "load_template",
    "make_strategy",
    "preset_for_model",
    "prove",
    "resolve_setup",
    "trace_summary",
]
