"""The LeanDojo adapter: LeanDojo's own result types, built directly, translated to the session interface.

The Dojo process cannot run here (no Lean toolchain or traced repository), so ``ScriptedDojo`` stands in for it: a
test double at that boundary that answers ``run_tac`` with real ``lean_dojo`` result objects from a script.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from malot.lean.leandojo import DojoSession, LeanDojoSessions, split_pp_goals, translate_result
from malot.lean.session import ProofSession, SessionLostError, SessionUnsupportedError, SessionVerifier
from malot.llm.base import Capabilities, GenerationRequest
from malot.llm.fake import ScriptedLLM
from malot.provers.search.best_first import BestFirstSearch
from malot.provers.search.policy import TacticPolicy

pytestmark = pytest.mark.slow  # importing lean_dojo takes about 2 s

from lean_dojo.interaction import dojo as ld  # noqa: E402  (the [leandojo] extra is part of the dev install)

PP = "p q : Prop\nh : p ∧ q\n⊢ q ∧ p"


def test_translation_of_each_result_type() -> None:
    state = translate_result(ld.TacticState(pp="x : Nat\n⊢ x = x\n\ncase b\n⊢ 1 = 1", id=4), "constructor", 7)
    assert state.verdict == "open" and state.state is not None and state.state.id == 7
    assert state.state.goals == ("x : Nat\n⊢ x = x", "case b\n⊢ 1 = 1")
    done = translate_result(ld.ProofFinished(tactic_state_id=9, message=None), "rfl", 8)
    assert done.verdict == "provisional" and done.status == "ProofFinished" and not done.final
    error = translate_result(ld.LeanError(error="unknown identifier 'foo'"), "exact foo", 9)
    assert error.verdict == "error" and error.error == "unknown identifier 'foo'"
    given_up = translate_result(ld.ProofGivenUp(), "sorry", 10)
    assert given_up.verdict == "error" and given_up.status == "ProofGivenUp"


def test_split_pp_goals() -> None:
    assert split_pp_goals(PP) == (PP,)
    assert split_pp_goals("") == ()


class ScriptedDojo:
    """A stand-in for ``lean_dojo.Dojo(theorem)``: a context manager whose ``run_tac`` answers from a table
    ``(state pp, tactic) -> lean_dojo result`` with real LeanDojo result objects."""

    def __init__(self, theorem: Any, timeout: int, table: dict[tuple[str, str], Any], initial: str) -> None:
        self.theorem = theorem
        self.table = table
        self.initial = initial
        self.entered = self.exited = 0
        self.calls: list[tuple[int, str]] = []

    def __enter__(self) -> tuple[ScriptedDojo, Any]:
        self.entered += 1
        return self, ld.TacticState(pp=self.initial, id=0)

    def __exit__(self, *exc: object) -> None:
        self.exited += 1

    def run_tac(self, state: Any, tactic: str) -> Any:
        self.calls.append((state.id, tactic))
        answer = self.table.get((state.pp, tactic), ld.LeanError(error=f"unknown tactic {tactic}"))
        if isinstance(answer, Exception):
            raise answer
        return answer


AFTER_INTRO = "p q : Prop\nh : p ∧ q\n⊢ q ∧ p"
TABLE: dict[tuple[str, str], Any] = {
    ("p q : Prop\n⊢ p ∧ q → q ∧ p", "intro h"): ld.TacticState(pp=AFTER_INTRO, id=1),
    (AFTER_INTRO, "exact ⟨h.2, h.1⟩"): ld.ProofFinished(tactic_state_id=2, message=None),
    (AFTER_INTRO, "sorry"): ld.ProofGivenUp(),
    (AFTER_INTRO, "slow"): ld.DojoTacticTimeoutError("tactic timed out"),
    (AFTER_INTRO, "crash"): ld.DojoCrashError("OOM"),
}


def sessions(dojos: list[ScriptedDojo]) -> LeanDojoSessions:
    def factory(theorem: Any, timeout: int) -> ScriptedDojo:
        dojo = ScriptedDojo(theorem, timeout, TABLE, "p q : Prop\n⊢ p ∧ q → q ∧ p")
        dojos.append(dojo)
        return dojo

    return LeanDojoSessions(
        ("https://example.org/repo", "abc"),
        {"Demo.and_swap": "Demo/Basic.lean", "Demo.other": "Demo/Basic.lean"},
        dojo_factory=factory,
        theorem_factory=lambda repo, path, name: (repo, path, name),
    )


async def test_a_dojo_session_runs_tactics_and_translates_results() -> None:
    dojos: list[ScriptedDojo] = []
    async with sessions(dojos).open_session() as session:
        assert isinstance(session, ProofSession) and not session.supports_pickle
        [root] = await session.start("theorem and_swap (p q : Prop) : p ∧ q → q ∧ p := by sorry")
        assert dojos[0].theorem == (("https://example.org/repo", "abc"), "Demo/Basic.lean", "Demo.and_swap")
        step = await session.run_tactic(root, "intro h")
        assert step.state is not None and step.state.goals == (AFTER_INTRO,)
        assert (await session.run_tactic(step.state, "exact ⟨h.2, h.1⟩")).verdict == "provisional"
        assert (await session.run_tactic(step.state, "sorry")).status == "ProofGivenUp"
        assert (await session.run_tactic(step.state, "slow")).error == "timeout: tactic timed out"
        with pytest.raises(SessionLostError):
            await session.run_tactic(step.state, "crash")
        with pytest.raises(SessionUnsupportedError):
            await session.pickle_state(root, "/tmp/x")
    assert dojos[0].entered == dojos[0].exited == 1


async def test_best_first_search_runs_on_a_dojo_session() -> None:
    def answer(request: GenerationRequest) -> list[dict[str, Any]]:
        prompt = str(request.prompt)
        tactic = "exact ⟨h.2, h.1⟩" if "h : p ∧ q" in prompt else "intro h"
        return [{"text": tactic, "logprobs": [-0.1]}] * request.params.n

    llm = ScriptedLLM(answer, capabilities=Capabilities(backend="scripted", logprobs=True))
    dojos: list[ScriptedDojo] = []
    async with sessions(dojos).open_session() as session:
        [root] = await session.start("theorem and_swap (p q : Prop) : p ∧ q → q ∧ p := by sorry")
        outcome = await BestFirstSearch(session, TacticPolicy(llm, k=1)).run(root)
    assert outcome.proof == ["intro h", "exact ⟨h.2, h.1⟩"] and outcome.expansions == 2


def test_unknown_or_ambiguous_theorem_names() -> None:
    from malot.errors import LeanError

    backend = LeanDojoSessions(("u", "c"), {"A.x": "f.lean", "B.x": "g.lean"}, theorem_factory=lambda *a: a)
    with pytest.raises(LeanError, match="2 traced theorem"):
        backend.theorem_for("x")
    with pytest.raises(LeanError, match="no traced theorem"):
        backend.theorem_for("y")
    assert backend.theorem_for("A.x") == (("u", "c"), "f.lean", "A.x")


async def test_session_verifier_routes_checks_and_sessions() -> None:
    class Checks:
        name = "files"
        sandboxed = True
        closed = False

        async def check(self, snippets: Any, timeout: float | None = None) -> list[Any]:  # noqa: ASYNC109
            return ["checked"]

        async def __aenter__(self) -> Checks:
            return self

        async def __aexit__(self, *exc: object) -> None:
            self.closed = True

        async def aclose(self) -> None:
            self.closed = True

    inner = Checks()
    async with SessionVerifier(inner, sessions([])) as verifier:
        assert await verifier.check([]) == ["checked"] and verifier.name == "files" and verifier.sandboxed
        assert isinstance(verifier.open_session(), DojoSession)
    assert inner.closed


def test_sessions_from_a_leandojo_benchmark_file(tmp_path: Any) -> None:
    from malot.eval.datasets import load_leandojo

    entries = [
        {
            "full_name": "Demo.and_swap",
            "file_path": "Demo/Basic.lean",
            "start": [3, 1],
            "end": [4, 20],
            "traced_tactics": [],
            "theorem_statement": "theorem and_swap (p q : Prop) : p ∧ q → q ∧ p := by\n  intro h\n  exact ⟨h.2, h.1⟩",
        }
    ]
    split = tmp_path / "random"
    split.mkdir()
    (split / "test.json").write_text(json.dumps(entries), encoding="utf-8")
    backend = LeanDojoSessions.from_benchmark(("u", "c"), split, theorem_factory=lambda *a: a)
    problem = load_leandojo(split, header="").problems[0]  # the loader feeds the problems, the sessions the Dojo
    assert backend.theorem_for("and_swap") == (("u", "c"), "Demo/Basic.lean", problem.name)
