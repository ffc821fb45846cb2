"""The README's tool-agent example (a scripted model merging two tiny checkpoints with fisher_merge) runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("```", start)]


@pytest.mark.slow
def test_readme_fisher_merge_through_the_loop(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(_block_after("## Agents that call tools"), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "answered [('fisher_merge', None)] 2.0"
    assert (tmp_path / "merged.safetensors").is_file()
