"""Fixtures for the fusion plugin tests: offline tiny Llama models sharing one vocabulary."""

from __future__ import annotations

import os
from typing import Any

import pytest
from fusion_fixtures import tiny_llama

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_trio() -> tuple[Any, Any, Any]:
    """(large, small expert, small base): a wider large model and two different small models."""
    import torch

    torch.set_num_threads(1)
    return tiny_llama(11, hidden=64), tiny_llama(12), tiny_llama(13)


@pytest.fixture(scope="session")
def fusion_models() -> dict[str, Any]:
    """Saved (large, base, expert) tiny Llama folders sharing one tokenizer, built once and cached."""
    from pathlib import Path

    from malot_fusion.testing import build_fusion_models

    return build_fusion_models(Path(__file__).parent / ".cache" / "fusion-models")
