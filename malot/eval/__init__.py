"""malot.eval: benchmark datasets, the resumable evaluation runner, the results store, pass@k, reports and plots.

Light to import (no torch, no matplotlib, no ray): plots import matplotlib lazily, the Ray backend imports ray
lazily, and the default solver imports the provers only when it starts.
"""

from malot.eval.datasets import Dataset, load_dataset, load_defects
from malot.eval.metrics import ComputeLedger, pass_at_k, pass_at_k_curve
from malot.eval.problems import CATEGORIES, BenchmarkProblem, category_of
from malot.eval.records import AttemptRecord, ProblemOutcome
from malot.eval.report import compare_runs, summarize, write_comparison, write_report
from malot.eval.runner import EvalRunner, LocalBackend, RunSummary
from malot.eval.runs import create_run, resume_settings
from malot.eval.solver import DEFAULT_SOLVER, ProblemBudget, ProblemSolver, load_solver_factory
from malot.eval.store import ResultsStore, RunStoreError

__all__ = [
    "CATEGORIES",
    "DEFAULT_SOLVER",
    "AttemptRecord",
    "BenchmarkProblem",
    "ComputeLedger",
    "Dataset",
    "EvalRunner",
    "LocalBackend",
    "ProblemBudget",
    "ProblemOutcome",
    "ProblemSolver",
    "ResultsStore",
    "RunStoreError",
    "RunSummary",
    "category_of",
    "compare_runs",
    "create_run",
    "load_dataset",
    "load_defects",
    "load_solver_factory",
    "pass_at_k",
    "pass_at_k_curve",
    "resume_settings",
    "summarize",
    "write_comparison",
    "write_report",
]
