"""Shared pieces of the domains plugin: array loading and checks, small training loops, synthetic data."""

from malot_domains.core.arrays import load_array, require_finite, require_labels, require_ndim, save_array
from malot_domains.core.training import adam_fit, freeze_except, parameter_snapshot, seed_all

__all__ = [
    "adam_fit",
    "freeze_except",
    "load_array",
    "parameter_snapshot",
    "require_finite",
    "require_labels",
    "require_ndim",
    "save_array",
    "seed_all",
]
