"""One pinned Lean project per dataset version; a mismatch is a clear error, never a silent wrong check."""

from __future__ import annotations

from pathlib import Path

import pytest

from malot.cli.app import main
from malot.config import Settings
from malot.errors import ConfigError
from malot.eval.datasets import load_dataset
from malot.lean.projects import PINNED_PROJECTS, checks, project_for_dataset, project_toolchain, repo_root


def test_datasets_declare_their_toolchains_and_the_pinned_projects_match() -> None:
    assert load_dataset("minif2f").toolchain == "leanprover/lean4:v4.24.0"
    assert load_dataset("putnambench:produced").select(count=2).toolchain == "leanprover/lean4:v4.27.0"
    for pinned in PINNED_PROJECTS.values():
        assert project_toolchain(pinned.path()) == pinned.toolchain
        assert f'@ "v{pinned.version}"' in (pinned.path() / "lakefile.lean").read_text(encoding="utf-8")
    assert [c.name for c in checks(Settings())] == ["minif2f project", "putnambench project"]


def test_the_pinned_project_is_chosen_and_a_mismatch_is_refused(tmp_path: Path) -> None:
    putnam = PINNED_PROJECTS["putnambench"]
    assert project_for_dataset("putnambench-given", putnam.toolchain, Settings()) == putnam.path()
    assert project_for_dataset("mine", None, Settings()) is None
    wrong = Settings.model_validate({"lean": {"project": str(repo_root() / "lean_project")}})
    with pytest.raises(ConfigError, match=r"pinned to leanprover/lean4:v4\.27\.0 but the Lean project"):
        project_for_dataset("putnambench-given", putnam.toolchain, wrong)
    right = Settings.model_validate({"lean": {"project": str(putnam.path())}})
    assert project_for_dataset("putnambench-given", putnam.toolchain, right) is None  # kept as configured


@pytest.mark.lean
def test_eval_refuses_a_lean_of_another_version(
    tmp_path: Path, lean_exe: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", "minif2f", "--count", "1", "--model", "script:none", "--lean", str(lean_exe)]
    assert main([*args, "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "pinned to leanprover/lean4:v4.24.0" in err and "Lean 4.35.0" in err
    assert not (tmp_path / "run").exists()


def test_the_toolchain_check_can_be_turned_off() -> None:
    putnam = PINNED_PROJECTS["putnambench"]
    wrong = Settings.model_validate({"lean": {"project": str(repo_root() / "lean_project"), "toolchain_check": False}})
    assert project_for_dataset("putnambench-given", putnam.toolchain, wrong) is None


@pytest.mark.lean
def test_prove_refuses_a_dataset_problem_in_a_lean_of_another_version(
    tmp_path: Path, lean_exe: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["prove", "--problem", "putnambench:putnam_1962_a5", "--model", "script:none", "--lean", str(lean_exe)]
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    assert "pinned to leanprover/lean4:v4.27.0" in capsys.readouterr().err
