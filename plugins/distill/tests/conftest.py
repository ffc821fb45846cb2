"""Settings for the distill plugin tests: offline Hugging Face, one CPU thread."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_lm_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two tiny random-weight Llama checkpoints sharing one tokenizer (malot.testing.tiny_models), built once."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from malot.testing.tiny_models import build_tiny_llama

    root = tmp_path_factory.mktemp("tiny_lms")
    student = build_tiny_llama(root / "student", vocab_size=300, seed=0)
    model = AutoModelForCausalLM.from_pretrained(str(student), dtype=torch.float32)
    torch.manual_seed(1)
    teacher_model = AutoModelForCausalLM.from_config(model.config)
    teacher = root / "teacher"
    teacher_model.save_pretrained(str(teacher))
    AutoTokenizer.from_pretrained(str(student)).save_pretrained(str(teacher))
    return student, teacher
