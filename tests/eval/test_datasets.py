"""Datasets: shipped MiniF2F, JSONL files, Lean projects, the LeanDojo layout, filters, defects, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from malot.errors import DatasetError
from malot.eval.datasets import load_dataset, load_defects
from malot.eval.problems import category_of


def test_minif2f_loads_and_filters() -> None:
    data = load_dataset("minif2f")
    assert len(data) == 488
    assert len(data.select(split="test")) == 244
    assert len(data.select(split="validation")) == 244
    imo = data.select(categories=["imo"])
    assert imo.names() and all(n.startswith("imo") for n in imo.names())
    nt = data.select(split="test", categories=["mathd-nt"])
    assert len(nt) == 60 and all(n.startswith("mathd_numbertheory") for n in nt.names())
    amc = data.select(names=["amc12a_2021_*"], count=3)
    assert len(amc) == 3 and all(n.startswith("amc12a_2021_") for n in amc.names())
    first = data.problems[0]
    assert first.statement.endswith(":= by") and first.header.startswith("import Mathlib")
    assert first.informal


def test_a_folder_of_jsonl_files_is_one_dataset(tmp_path: Path) -> None:
    from malot.data import MINIF2F_JSONL

    lines = MINIF2F_JSONL.read_text(encoding="utf-8").splitlines()
    (tmp_path / "a.jsonl").write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text("\n".join(lines[3:5]) + "\n", encoding="utf-8")
    data = load_dataset(tmp_path)
    assert len(data) == 5 and data.name == tmp_path.name
    (tmp_path / "c.jsonl").write_text(lines[0] + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"is in both a\.jsonl:1 and c\.jsonl:1"):
        load_dataset(tmp_path)


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("aime_1983_p1", "aime"),
        ("amc12a_2021_p7", "amc"),
        ("amc12_2000_p5", "amc"),
        ("imo_1959_p1", "imo"),
        ("mathd_algebra_478", "mathd_algebra"),
        ("mathd_numbertheory_5", "mathd_numbertheory"),
        ("induction_12dvd4expnp1p20", "induction"),
        ("algebra_sqineq_at2malt1", "algebra"),
        ("numbertheory_4x3m7y3neq2003", "numbertheory"),
        ("zero_eq_zero", "other"),
    ],
)
def test_categories(name: str, category: str) -> None:
    assert category_of(name) == category


def test_unknown_names_and_categories_list_close_matches() -> None:
    data = load_dataset("minif2f")
    with pytest.raises(DatasetError, match=r"amc12a_2021_p77.*close matches: .*amc12a_2021_p7"):
        data.select(names=["amc12a_2021_p77"])
    with pytest.raises(DatasetError, match="mathd_algebra_478"):
        data.get("mathd_algebra_4788")
    with pytest.raises(DatasetError, match=r"unknown category 'amcc'.*amc"):
        data.select(categories=["amcc"])
    with pytest.raises(DatasetError, match="no split 'dev2'"):
        data.select(split="dev2")


def test_malformed_jsonl_names_file_and_line(tmp_path: Path) -> None:
    good = {"name": "a", "split": "test", "header": "", "formal_statement": "theorem a : True := by"}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + '{"name": "b", "formal_statement": \n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.jsonl:3: not valid JSON"):
        load_dataset(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps({"name": "b", "header": ""}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2: missing or empty field\(s\) formal_statement"):
        load_dataset(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2: duplicate problem name 'a' \(first on line 1\)"):
        load_dataset(path)
    with pytest.raises(DatasetError, match="neither 'minif2f' nor an existing file"):
        load_dataset(tmp_path / "missing.jsonl")


def test_lean_project_sorry_theorems(tmp_path: Path) -> None:
    (tmp_path / "MiniF2F" / "Test").mkdir(parents=True)
    (tmp_path / "MiniF2F" / "Valid").mkdir(parents=True)
    (tmp_path / ".lake" / "packages").mkdir(parents=True)
    header = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat\n\n"
    (tmp_path / "MiniF2F" / "Test" / "mathd_algebra_10.lean").write_text(
        header
        + "/-- Compute $|(-3)^2|$. -/\n"
        + "theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by\n"
        + "  sorry\n",
        encoding="utf-8",
    )
    (tmp_path / "MiniF2F" / "Valid.lean").write_text(
        header
        + "/-- First. -/\ntheorem amc12_2000_p1 (i m o : ℕ) (h₀ : i ≠ m) :\n    i + m + o ≤ 671 := by sorry\n\n"
        + "theorem proved_already : 1 = 1 := by rfl\n\n"
        + "/-- Show that. -/\ntheorem imo_1959_p1 (n : ℕ) (h₀ : 0 < n) : Nat.gcd (21 * n + 4) (14 * n + 3) = 1 :=\n"
        + "  sorry\n",
        encoding="utf-8",
    )
    (tmp_path / ".lake" / "packages" / "Skip.lean").write_text("theorem skipped : True := sorry\n", encoding="utf-8")
    data = load_dataset(tmp_path)
    assert sorted(data.names()) == ["amc12_2000_p1", "imo_1959_p1", "mathd_algebra_10"]
    alg = data.get("mathd_algebra_10")
    assert alg.split == "test" and alg.header == header and alg.informal == "Compute $|(-3)^2|$."
    assert alg.statement.startswith("theorem mathd_algebra_10") and alg.statement.endswith("= 10 := by")
    amc = data.get("amc12_2000_p1")
    assert amc.split == "valid" and amc.statement.endswith("i + m + o ≤ 671 := by") and amc.informal == "First."
    assert amc.header == header
    imo = data.get("imo_1959_p1")
    assert imo.statement.endswith("= 1 :=") and imo.informal == "Show that."
    assert data.select(split="valid").names() == ["amc12_2000_p1", "imo_1959_p1"]


def test_leandojo_layout(tmp_path: Path) -> None:
    random_dir = tmp_path / "leandojo_benchmark_4" / "random"
    random_dir.mkdir(parents=True)
    src = tmp_path / "mathlib4"
    (src / "Mathlib").mkdir(parents=True)
    (src / "Mathlib" / "Foo.lean").write_text(
        "import Mathlib.Init\n\ntheorem Foo.bar (n : Nat) : n + 0 = n := by\n  simp\n", encoding="utf-8"
    )
    entry = {"url": "https://github.com/leanprover-community/mathlib4", "commit": "abc", "traced_tactics": []}
    (random_dir / "test.json").write_text(
        json.dumps(
            [
                {
                    **entry,
                    "full_name": "Nat.foo",
                    "file_path": "Mathlib/X.lean",
                    "start": [1, 1],
                    "end": [2, 9],
                    "theorem_statement": "theorem Nat.foo (a : Nat) : a = a := by rfl",
                },
                {**entry, "full_name": "Foo.bar", "file_path": "Mathlib/Foo.lean", "start": [3, 1], "end": [4, 7]},
            ]
        ),
        encoding="utf-8",
    )
    (random_dir / "train.json").write_text(
        json.dumps(
            [
                {
                    **entry,
                    "full_name": "T.x",
                    "file_path": "M.lean",
                    "start": [1, 1],
                    "end": [1, 2],
                    "theorem_statement": "lemma T.x : True :=\n  trivial",
                }
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(DatasetError, match=r"test\.json entry 1 \(Foo\.bar\) has no theorem_statement"):
        load_dataset(tmp_path / "leandojo_benchmark_4")
    data = load_dataset(tmp_path / "leandojo_benchmark_4", leandojo_source=src)
    assert data.names() == ["T.x", "Nat.foo", "Foo.bar"]
    assert data.get("Nat.foo").statement == "theorem Nat.foo (a : Nat) : a = a := by"
    assert data.get("Foo.bar").statement == "theorem Foo.bar (n : Nat) : n + 0 = n := by"
    assert data.get("T.x").statement == "lemma T.x : True :=" and data.get("T.x").split == "train"
    assert data.get("Nat.foo").header == "import Mathlib\n"
    one_file = load_dataset(random_dir / "train.json")
    assert one_file.names() == ["T.x"]


def test_defect_lists(tmp_path: Path) -> None:
    text = tmp_path / "defects.txt"
    text.write_text(
        "# known bad\nmathd_algebra_478 wrong constant in the statement\namc12a_2021_p7\n", encoding="utf-8"
    )
    assert load_defects(text) == {
        "mathd_algebra_478": "wrong constant in the statement",
        "amc12a_2021_p7": "known defective",
    }
    data = load_dataset("minif2f", defects=text)
    assert data.defects["mathd_algebra_478"] == "wrong constant in the statement"
    kept = data.select(names=["mathd_algebra_47*"])
    assert kept.defects == {"mathd_algebra_478": "wrong constant in the statement"}
    assert "mathd_algebra_478" not in data.select(skip_defective=True).names()
    js = tmp_path / "defects.json"
    js.write_text(json.dumps({"mathd_algebra_4788": "typo"}), encoding="utf-8")
    with pytest.raises(DatasetError, match=r"defect list names 'mathd_algebra_4788'.*mathd_algebra_478"):
        load_dataset("minif2f", defects=js)
