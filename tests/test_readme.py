"""The README's self-contained examples run as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("```", start)]


def test_agents_core_example_runs(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(_block_after("### The agents core in one example"))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True ['success', 'cancelled', 'cancelled', 'cancelled']"
