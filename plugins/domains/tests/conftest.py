"""Settings for the domains plugin tests: offline Hugging Face, one CPU thread."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TSFM_PYTHON_LOGGING_LEVEL", "WARNING")
