"""The one rule that decides whether a proof counts, with every check reported as its own flag.

:func:`screen` needs no Lean: it extracts the code from a model's answer, re-splices the problem's header and
original statement around the model's proof, and runs the source screen. :func:`verify_candidate` then checks the
assembled file with any :class:`~malot.lean.base.Verifier`, appending its own ``#print axioms <target>`` and
reading only the message at that command's position, and fills every verdict flag of the
:class:`~malot.lean.base.CheckResult`.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from malot.errors import DatasetError, VerifierError
from malot.lean.base import CheckResult, LeanMessage, Snippet, Verifier
from malot.lean.screen import Violation, screen_tokens
from malot.lean.splice import extract_code, splice_candidate

if TYPE_CHECKING:
    from malot.config import LeanSettings
    from malot.lean.final_check import FinalChecker

__all__ = [
    "DEFAULT_AXIOMS",
    "NATIVE_AXIOMS",
    "AcceptanceRule",
    "ScreenResult",
    "TargetTheorem",
    "Violation",
    "apply_rule",
    "final_checker_of",
    "parse_axioms_message",
    "screen",
    "split_source",
    "target_from_source",
    "verify_candidate",
    "verify_candidates",
]

DEFAULT_AXIOMS = ("propext", "Classical.choice", "Quot.sound")
NATIVE_AXIOMS = ("Lean.ofReduceBool", "Lean.trustCompiler", "Lean.ofReduceNat")
_NAME_RE = re.compile(r"\b(?:theorem|lemma)\s+([^\s:({\[⦃]+?)(?=\.\{|[\s:({\[⦃]|$)")


class TargetTheorem(BaseModel):
    """The problem's trusted parts: header (imports, options, opens), statement (ending ``:= by`` or ``:=``), name.

    ``name`` defaults to the name declared in ``statement``.
    """

    model_config = ConfigDict(frozen=True)

    header: str = ""
    statement: str
    name: str = ""
    trusted_header: bool = Field(
        True, description="False in whole-file mode: the header is the user's own file, screened by the final check"
    )

    @model_validator(mode="before")
    @classmethod
    def _derive_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name"):
            m = _NAME_RE.search(str(data.get("statement", "")))
            if m is None:
                raise ValueError("the statement declares no 'theorem NAME'; pass name= explicitly")
            data = {**data, "name": m.group(1)}
        return data

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TargetTheorem:
        """From a MiniF2F-style record (``header``, ``formal_statement``, ``name``)."""
        return cls(
            header=str(record.get("header", "")),
            statement=str(record.get("formal_statement") or record.get("statement", "")),
            name=str(record.get("name", "")),
        )


def split_source(code: str, name: str | None = None) -> tuple[TargetTheorem, str]:
    """Whole-file mode: ``(target, candidate)`` for checking a user's own Lean file with the same rule.

    The target theorem is ``name`` (default: the last ``theorem``/``lemma`` in the file). Everything before its
    declaration (imports, options, ``universe``/``variable``/``namespace`` commands and the file's own definitions)
    is the target's header, so the statement means what it means in the file; the header is marked untrusted, so
    the final check screens it too. The candidate is the target declaration and everything after it. Universe
    parameters (``theorem t.{u}``), modifiers (``private``, ``protected``) and attributes (even with strings that
    contain the word ``theorem``) are handled; the statement keeps the signature only.
    """
    from malot.lean.lexer import code_view, tokenize
    from malot.lean.splice import _declaration_start, _signature_end

    view = code_view(code)
    tokens = tokenize(view)
    decls = [
        k
        for k in range(len(tokens) - 1)
        if tokens[k].text in ("theorem", "lemma") and tokens[k + 1].kind == "ident"
        if name is None or tokens[k + 1].text == name or ".".join(tokens[k + 1].parts) == name
    ]
    if not decls:
        raise DatasetError(
            f"no theorem {name + ' ' if name else ''}found in the Lean source", hint="pass the theorem's name"
        )
    k = decls[-1]
    end = _signature_end(tokens, k)
    if end is None:
        raise DatasetError(f"the theorem {tokens[k + 1].text} has no ':=' (incomplete statement?)")
    start = _declaration_start(tokens, k)
    cut = len(view[:start].rstrip())  # trailing comments and doc comments stay with the declaration
    header = code[:cut].rstrip() + "\n" if cut else ""
    statement = "theorem" + code[tokens[k].end : tokens[end].end]
    target = TargetTheorem(header=header, statement=statement, name=tokens[k + 1].text, trusted_header=False)
    return target, code[cut:].lstrip("\n")


def target_from_source(code: str, name: str | None = None) -> TargetTheorem:
    """The target of a whole Lean file (see :func:`split_source`, whose candidate is the rest of the file)."""
    return split_source(code, name)[0]


class AcceptanceRule(BaseModel):
    """Which proofs count: allowed axioms and the opt-ins. The defaults are the strict rule.

    ``allow_native`` admits ``native_decide`` / ``decide +native`` and the axioms native computation adds
    (``Lean.ofReduceBool``, ``Lean.trustCompiler`` and per-use auxiliary axioms); ``lean4checker`` re-checks the
    environment with lean4checker where the backend can; ``check_screened`` still sends screened-out candidates
    to Lean (for error feedback; they are rejected either way).
    """

    model_config = ConfigDict(frozen=True)

    allowed_axioms: frozenset[str] = Field(default_factory=lambda: frozenset(DEFAULT_AXIOMS))
    allow_native: bool = False
    lean4checker: bool = False
    check_screened: bool = False
    require_final_check: bool = False

    @classmethod
    def from_settings(cls, settings: LeanSettings) -> AcceptanceRule:
        """The rule configured in ``[lean]`` (``allowed_axioms``, ``allow_native_decide``, ``lean4checker``,
        ``final_check = "require"``)."""
        return cls(
            allowed_axioms=frozenset(settings.allowed_axioms),
            allow_native=settings.allow_native_decide,
            lean4checker=settings.lean4checker,
            require_final_check=settings.final_check == "require",
        )

    def axiom_allowed(self, axiom: str) -> bool:
        """Is ``axiom`` acceptable under this rule?"""
        if axiom in self.allowed_axioms:
            return True
        if self.allow_native:
            return axiom in NATIVE_AXIOMS or "._native." in axiom or "native_decide" in axiom
        return False


@dataclass
class ScreenResult:
    """The checks that need no Lean: extraction, re-splice, source screen.

    ``code`` is the assembled file (header + preamble + original statement + proof, without the checker's
    ``#print axioms``), empty when the candidate could not be assembled.
    """

    ok: bool
    code: str
    violations: list[Violation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fenced: bool = False
    empty: bool = False
    statement_respliced: bool = False
    candidate_had_statement: bool = False
    header_end: int = 0

    @property
    def reasons(self) -> list[str]:
        """Every reason the screen rejects, as sentences."""
        return self.problems + [str(v) for v in self.violations]

    @property
    def rules(self) -> set[str]:
        """The rule names of the violations (``"sorry"``, ``"#exit"``, ...)."""
        return {v.rule for v in self.violations}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "ok": self.ok,
            "code": self.code,
            "violations": [str(v) for v in self.violations],
            "rules": sorted(self.rules),
            "problems": self.problems,
            "fenced": self.fenced,
            "empty": self.empty,
            "statement_respliced": self.statement_respliced,
            "candidate_had_statement": self.candidate_had_statement,
        }


def screen(target: TargetTheorem, candidate_code: str, rule: AcceptanceRule | None = None) -> ScreenResult:
    """Extract, re-splice and screen a model's answer without running Lean (the cheap pre-filter)."""
    rule = rule or AcceptanceRule()
    text, fenced = extract_code(candidate_code, target.name)
    if not text.strip():
        return ScreenResult(False, "", problems=["empty output: no Lean code in the answer"], fenced=fenced, empty=True)
    spliced = splice_candidate(target.header, target.statement, target.name, text)
    if not spliced.ok:
        return ScreenResult(
            False, "", problems=spliced.problems, fenced=fenced, candidate_had_statement=spliced.candidate_had_statement
        )
    code = spliced.code
    violations = screen_tokens(
        code,
        [(spliced.header_end, spliced.statement_start), (spliced.statement_end, len(code))],
        (spliced.header_end, spliced.statement_start),
        allow_native=rule.allow_native,
    )
    return ScreenResult(
        not violations,
        code,
        violations,
        fenced=fenced,
        statement_respliced=True,
        candidate_had_statement=spliced.candidate_had_statement,
        header_end=spliced.header_end,
    )


_AXIOMS_RE = re.compile(r"depends on axioms:\s*\[(.*)\]", re.DOTALL)
_NO_AXIOMS_RE = re.compile(r"does not depend on any axioms")


def parse_axioms_message(text: str) -> list[str] | None:
    """The axiom list of a ``#print axioms`` message (``[]`` for none), or None if ``text`` is not one."""
    if _NO_AXIOMS_RE.search(text):
        return []
    m = _AXIOMS_RE.search(text)
    if m is None:
        return None
    return [a.strip() for a in m.group(1).replace("\n", " ").split(",") if a.strip()]


def _names_target(text: str, name: str) -> bool:
    """Does a ``#print axioms`` message name exactly ``name`` (``'name' depends ...``, any quoting)?"""
    plain = name.replace("«", "").replace("»", "")
    head = text.split(" depends on axioms", 1)[0].split(" does not depend", 1)[0].strip()
    return head.strip("'`").replace("«", "").replace("»", "") == plain


def _own_axioms_message(messages: list[LeanMessage], line: int, name: str) -> tuple[LeanMessage | None, bool]:
    """The message of the checker's own ``#print axioms`` (at ``line``) and whether Lean reported an error there."""
    errored = False
    found: LeanMessage | None = None
    for m in messages:
        if m.pos is None or m.pos.line != line:
            continue
        if m.is_error:
            errored = True
        elif found is None and parse_axioms_message(m.data) is not None and _names_target(m.data, name):
            found = m
    return found, errored


def apply_rule(
    result: CheckResult,
    *,
    rule: AcceptanceRule,
    screened: ScreenResult,
    target: TargetTheorem,
    axioms_line: int,
    sandboxed: bool,
) -> CheckResult:
    """Fill every verdict flag of ``result`` (Lean's answer for the assembled file) and decide ``accepted``."""
    msg, errored = _own_axioms_message(result.messages, axioms_line, target.name)
    axioms = parse_axioms_message(msg.data) if msg is not None else None
    update: dict[str, Any] = {
        "screen_ok": screened.ok,
        "violations": screened.reasons,
        "statement_respliced": screened.statement_respliced,
        "target_declared": msg is not None and not errored,
        "no_errors": result.status == "ok" and not result.errors,
        "no_sorry": not result.has_sorry_warning and "sorryAx" not in (axioms or []),
        # Lean reached the checker's own last command (it answered there), and the screen found no #exit.
        "no_exit": (msg is not None or errored) and "#exit" not in screened.rules,
        "whole_command_checked": True,
        "axioms": axioms,
        "sandboxed": sandboxed,
    }
    if axioms is None:
        update["axioms_allowed"] = False
        update["disallowed_axioms"] = []
    else:
        bad = [a for a in axioms if not rule.axiom_allowed(a)]
        update["axioms_allowed"] = not bad
        update["disallowed_axioms"] = bad
    if not rule.lean4checker:
        update["lean4checker_ok"] = None
    out = result.model_copy(update=update)
    accepted = (
        out.status == "ok"
        and bool(out.screen_ok)
        and bool(out.statement_respliced)
        and bool(out.target_declared)
        and bool(out.no_errors)
        and bool(out.no_sorry)
        and bool(out.no_exit)
        and bool(out.whole_command_checked)
        and bool(out.axioms_allowed)
        and out.lean4checker_ok is not False
    )
    return out.model_copy(update={"accepted": accepted})


def _undecodable(text: str) -> bool:
    """True when ``text`` cannot be written as UTF-8 (a lone surrogate from a broken decoder or client)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _prepare(
    verifier: Verifier, target: TargetTheorem, candidate_code: str, rule: AcceptanceRule, sid: str
) -> tuple[ScreenResult, CheckResult | None, str, int]:
    """Screen one candidate: (screen result, final result if it never reaches Lean, code to check, axioms line)."""
    isolation = str(getattr(verifier, "sandbox_kind", "off"))
    if _undecodable(candidate_code):
        screened = ScreenResult(False, "", problems=["the candidate is not valid Unicode text (a lone surrogate)"])
    else:
        screened = screen(target, candidate_code, rule)
    if not screened.code or (not screened.ok and not rule.check_screened):
        early = CheckResult(
            id=sid,
            status="screened",
            code=screened.code or None,
            backend=str(getattr(verifier, "name", "")),
            screen_ok=False,
            violations=screened.reasons,
            statement_respliced=screened.statement_respliced,
            sandboxed=bool(getattr(verifier, "sandboxed", False)),
            isolation=isolation,
            decided_by="screen",
            accepted=False,
        )
        return screened, early, "", 0
    body = screened.code.rstrip() + "\n\n"
    return screened, None, body + f"#print axioms {target.name}\n", body.count("\n") + 1


def _plausible(result: CheckResult, screened: ScreenResult) -> bool:
    """Did the fast loop find nothing wrong that the final check would not see again?

    Axioms and the target's name are left to the final check: the fast loop reads them in the candidate's own
    scope, where ``open`` can shorten names (false rejections) and declarations can fake them.
    """
    return (
        result.status == "ok"
        and screened.ok
        and screened.statement_respliced
        and bool(result.no_errors)
        and bool(result.no_sorry)
        and "#exit" not in screened.rules
    )


async def _finish(
    verifier: Verifier,
    result: CheckResult,
    screened: ScreenResult,
    target: TargetTheorem,
    rule: AcceptanceRule,
    code: str,
    axioms_line: int,
    timeout: float | None,  # noqa: ASYNC109
    final: FinalChecker | None,
) -> CheckResult:
    result = result.model_copy(update={"code": code})
    sandboxed = bool(getattr(verifier, "sandboxed", False))
    checked = apply_rule(
        result, rule=rule, screened=screened, target=target, axioms_line=axioms_line, sandboxed=sandboxed
    )
    isolation = str(getattr(verifier, "sandbox_kind", "off"))
    if not _plausible(checked, screened):
        return checked.model_copy(
            update={"accepted": False, "decided_by": "fast-check", "isolation": isolation, "final_check": None}
        )
    if final is None:
        if rule.require_final_check:
            return checked.model_copy(
                update={
                    "accepted": False,
                    "decided_by": "final-check",
                    "final_check": "unavailable",
                    "isolation": isolation,
                    "violations": [
                        *checked.violations,
                        "the final check needs a local Lean (lean_path or project) and none is configured",
                    ],
                }
            )
        if rule.lean4checker and checked.accepted:
            recheck = getattr(verifier, "lean4checker", None)
            ok: bool | None = await recheck(code, timeout) if recheck is not None else None
            checked = checked.model_copy(update={"lean4checker_ok": ok, "accepted": ok is not False})
        return checked.model_copy(
            update={"decided_by": "fast-check", "final_check": "unavailable", "isolation": isolation}
        )
    verdict = await final.check(
        header=target.header,
        trusted_header=target.trusted_header,
        statement=target.statement,
        name=target.name,
        body=screened.code[screened.header_end :],
        allowed_axioms=rule.allowed_axioms,
        allow_native=rule.allow_native,
        replay=rule.lean4checker or None,  # None: the checker's own default (on where lean4checker is built)
        timeout=timeout,
    )
    update: dict[str, Any] = {
        "accepted": verdict.ok,
        "final_check": "passed" if verdict.ok else "failed",
        "decided_by": "final-check" if verdict.ok else verdict.stage,
        "isolation": verdict.isolation,
        "sandboxed": verdict.isolation == "bwrap",
        "time_s": result.time_s + verdict.time_s,
    }
    if verdict.axioms is not None:
        bad = [a for a in verdict.axioms if not rule.axiom_allowed(a)]
        update.update(axioms=verdict.axioms, axioms_allowed=not bad, disallowed_axioms=bad)
    if verdict.kind is not None or verdict.stage in ("type", "kind"):
        update["target_declared"] = verdict.kind == "theorem"
    if rule.lean4checker or verdict.replayed is not None:
        update["lean4checker_ok"] = verdict.replayed
    if not verdict.ok:
        update["violations"] = [*checked.violations, f"final check ({verdict.stage}): {verdict.reason}"]
    return checked.model_copy(update=update)


_FROM_VERIFIER: Any = object()


def final_checker_of(verifier: Verifier) -> FinalChecker | None:
    """The final checker a verifier carries (``final_checker`` attribute), if any."""
    checker = getattr(verifier, "final_checker", None)
    return checker if checker is not None and hasattr(checker, "check") else None


async def verify_candidate(
    verifier: Verifier,
    target: TargetTheorem,
    candidate_code: str,
    rule: AcceptanceRule | None = None,
    timeout: float | None = None,  # noqa: ASYNC109
    *,
    id: str | None = None,
    final_checker: FinalChecker | None = _FROM_VERIFIER,
) -> CheckResult:
    """Screen, re-splice and check a model's answer; the verdict comes from the final, environment-level check.

    ``candidate_code`` may be a full snippet (with or without the statement, possibly Markdown-fenced) or a proof
    body. A candidate the screen rejects is not sent to Lean (unless ``rule.check_screened``); its result has
    ``status="screened"``. A candidate the fast loop finds plausible goes to ``final_checker`` (default: the
    verifier's own, see :mod:`malot.lean.final_check`), whose verdict is final; ``decided_by`` names the stage.
    """
    [result] = await verify_candidates(
        verifier, [(target, candidate_code)], rule, timeout, ids=[id] if id else None, final_checker=final_checker
    )
    return result


async def verify_candidates(
    verifier: Verifier,
    items: Sequence[tuple[TargetTheorem, str]],
    rule: AcceptanceRule | None = None,
    timeout: float | None = None,  # noqa: ASYNC109
    *,
    ids: Sequence[str] | None = None,
    final_checker: FinalChecker | None = _FROM_VERIFIER,
) -> list[CheckResult]:
    """:func:`verify_candidate` for many (target, candidate) pairs in one ``verifier.check`` call (one batch, so a
    pool or a Kimina server checks them in parallel). Results in input order; every candidate gets its own verdict
    (one that cannot be written as text is rejected alone)."""
    rule = rule or AcceptanceRule()
    final = final_checker_of(verifier) if final_checker is _FROM_VERIFIER else final_checker
    sids = list(ids) if ids is not None else [uuid.uuid4().hex[:12] for _ in items]
    prepared = [_prepare(verifier, t, c, rule, sid) for (t, c), sid in zip(items, sids, strict=True)]
    to_check = [(i, Snippet(id=sids[i], code=p[2])) for i, p in enumerate(prepared) if p[1] is None]
    checked = await verifier.check([s for _, s in to_check], timeout) if to_check else []
    if len(checked) != len(to_check):
        name = getattr(verifier, "name", verifier)
        raise VerifierError(f"the verifier {name!r} returned {len(checked)} results for {len(to_check)} snippets")
    out: list[CheckResult | None] = [p[1] for p in prepared]

    async def finish(i: int, result: CheckResult) -> None:
        screened, _, code, line = prepared[i]
        out[i] = await _finish(verifier, result, screened, items[i][0], rule, code, line, timeout, final)

    await asyncio.gather(*(finish(i, result) for (i, _), result in zip(to_check, checked, strict=True)))
    return [r for r in out if r is not None]
