"""The final, environment-level check: the verdict comes from Lean's environment, out of the candidate's reach.

The fast loop (REPL pool, ``lean --json``, the source screen) proposes; this module decides. It never concatenates the
candidate's text with a trusted command. Instead it builds three Lean modules and one checker file:

1. **Header module** (``MalotHeader_<hash>``): the trusted header (imports, options, the problem's own
   declarations), compiled once per header with ``lean -o``.
2. **Reference module** (``MalotReference_<hash>``): imports the header module, replays the header's scope
   commands (``open``, ``universe``, ``variable``, ``namespace``/``section``/``end``, allow-listed ``set_option``),
   and declares the reference statement as ``axiom _root_.MalotReference.<full name> <signature>``: the statement is
   elaborated from the trusted header alone, in its own process. Compiled once per problem.
3. **Candidate module** (``MalotCandidate_<id>``): the same import and scope replay, then the candidate's code (its
   helper declarations, the target theorem and its proof), compiled on its own with ``lean -o``.
4. **Checker** (trusted text only): imports the reference and candidate modules and runs

   .. code-block:: lean

      theorem MalotFinalCheck.proof : type_of% @MalotReference.NAME := @NAME
      #print axioms MalotFinalCheck.proof
      #print NAME

   The kernel checks that the candidate's constant inhabits the reference type (universe-polymorphic targets
   included: the checker's universe parameters are generalised); ``#print axioms`` collects the axioms from the
   environment in the checker's own scope (no ``open`` of the candidate can shorten a name); ``#print`` says the
   constant is a ``theorem``. Any error in any stage rejects.

What it relies on: Lean's kernel and elaborator for the checker's three commands; the toolchain; and the sandbox for
the candidate's elaboration-time code. Two guards close what the command checker cannot see: the candidate's raw
text (no lexer involved) must not mention ``skipKernelTC`` (which would let its declarations skip the kernel; Lean
has no replay without lean4checker), and, where the header is not a ``prelude`` file (so the candidate could extend
the syntax the checker parses), the candidate must not declare syntax, macros, elaborators or initialisers. Where a
Lake project has lean4checker (``[lean] lean4checker = true``), the candidate module is also replayed by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from malot.lean.base import LeanMessage
from malot.lean.lexer import code_view, tokenize
from malot.lean.messages import parse_json_lines
from malot.lean.sandbox import SandboxKind, limits_preexec, resolve_sandbox, wrap_command

if TYPE_CHECKING:
    from malot.config import LeanSettings

__all__ = [
    "FinalCheckStage",
    "FinalChecker",
    "FinalVerdict",
    "HeaderParts",
    "forbidden_mentions",
    "reference_declaration",
    "split_trusted_header",
]

#: Which stage decided a final verdict.
FinalCheckStage = Literal["guard", "header", "reference", "compile", "type", "kind", "axioms", "replay", "passed"]

# set_option names a replayed header may carry into the reference and candidate modules
_SAFE_OPTION_PREFIXES = (
    "maxHeartbeats",
    "maxRecDepth",
    "synthInstance.",
    "autoImplicit",
    "relaxedAutoImplicit",
    "linter.",
    "pp.",
    "trace.",
    "maxSynthPendingDepth",
    "exponentiation.",
)
_SCOPE_COMMANDS = frozenset({"open", "universe", "variable", "namespace", "section", "end", "set_option"})

#: Raw-text mentions (no lexer: comments and strings count too) that the command checker cannot defend against.
KERNEL_BYPASS = ("skipKernelTC",)
#: Raw-text words that extend the syntax the checker parses, or run code that can change the environment behind the
#: kernel's back; refused when the header is not ``prelude`` (a prelude file has no meta-programming at all).
SYNTAX_EXTENSIONS = (
    "macro",
    "macro_rules",
    "syntax",
    "elab",
    "elab_rules",
    "notation",
    "infix",
    "infixl",
    "infixr",
    "prefix",
    "postfix",
    "initialize",
    "builtin_initialize",
    "declare_syntax_cat",
    "term_elab",
    "command_elab",
    "delab",
    "app_unexpander",
    "run_cmd",
    "run_elab",
    "run_meta",
    "run_tac",
    "eval",
    "modifyEnv",
    "setEnv",
    "addDecl",
    "addDeclCore",
)
# an attribute that registers a tactic (``@[tactic foo]``, ``@[simp, «tactic» foo]``): only as an attribute
_TACTIC_ATTRIBUTE = re.compile(r"[\[,]\s*«?tactic»?[\s»\]]")


class FinalVerdict(BaseModel):
    """The final check's answer for one candidate."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    stage: FinalCheckStage = Field(description="the stage that decided (``passed`` when every stage passed)")
    reason: str = ""
    axioms: list[str] | None = None
    kind: str | None = Field(None, description="the target's declaration kind in the candidate's environment")
    isolation: SandboxKind = "off"
    replayed: bool | None = Field(None, description="lean4checker replayed the candidate (None: not run)")
    time_s: float = 0.0
    messages: list[LeanMessage] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class HeaderParts:
    """A trusted header split for the module design.

    ``prelude``: the header starts with ``prelude`` (no ``Init``); ``scope``: the scope commands to replay in the
    modules that import the header module; ``namespace``: the namespace open at the end of the header.
    """

    text: str
    prelude: bool
    scope: str
    namespace: str


def _commands(view: str) -> list[tuple[int, int]]:
    """Spans of top-level commands in a code view: a command starts at a line's first column."""
    starts = [m.start() for m in re.finditer(r"(?m)^(?=\S)", view)]
    return [(s, starts[i + 1] if i + 1 < len(starts) else len(view)) for i, s in enumerate(starts)]


def _safe_option(command: str) -> bool:
    parts = command.split()
    return len(parts) >= 3 and parts[0] == "set_option" and parts[1].startswith(_SAFE_OPTION_PREFIXES)


def split_trusted_header(header: str) -> HeaderParts:
    """Split ``header`` into what the header module holds and the scope commands the other modules replay."""
    view = code_view(header)
    prelude = False
    scope: list[str] = []
    stack: list[tuple[str, str]] = []  # ("namespace" | "section", name)
    for start, end in _commands(view):
        words = view[start:end].split()
        if not words:
            continue
        head = words[0]
        if head == "prelude":
            prelude = True
            continue
        if head == "noncomputable" and len(words) > 1 and words[1] == "section":
            head, words = "section", words[1:]
        if head not in _SCOPE_COMMANDS:
            continue
        text = header[start:end].rstrip()
        if head == "set_option" and ("in" in words[3:] or not _safe_option(text)):
            continue  # scoped to one command, or an option that changes what is checked
        if head in ("namespace", "section"):
            stack.append((head, words[1] if len(words) > 1 else ""))
        elif head == "end" and stack:
            stack.pop()
        scope.append(text)
    namespace = ".".join(name for kind, name in stack if kind == "namespace" and name)
    return HeaderParts(header, prelude, "\n".join(scope), namespace)


_DECL_RE = re.compile(r"^\s*(?:theorem|lemma)\s+")


def reference_declaration(statement: str, name: str, namespace: str = "") -> tuple[str, str]:
    """``(axiom text, full name)``: the trusted statement as an axiom named ``MalotReference.<full name>``.

    ``statement`` is ``theorem NAME[.{u,..}] SIGNATURE :=`` (``:= by`` and ``:=`` endings both work).
    """
    view = code_view(statement)
    tokens = tokenize(view)
    k = next(
        (i for i in range(len(tokens) - 1) if tokens[i].text in ("theorem", "lemma") and tokens[i + 1].kind == "ident"),
        None,
    )
    if k is None:
        raise ValueError("the statement declares no theorem")
    name_token = tokens[k + 1]
    depth = 0
    end = None
    for tok in tokens[k + 2 :]:
        if tok.text in ("(", "[", "{", "⦃", "⟨", "@["):
            depth += 1
        elif tok.text in (")", "]", "}", "⦄", "⟩"):
            depth = max(0, depth - 1)
        elif tok.text == ":=" and depth == 0:
            end = tok.start
            break
    signature = statement[name_token.end : end if end is not None else len(statement)].rstrip()
    written = statement[name_token.start : name_token.end]
    full = f"{namespace}.{written}" if namespace else written
    return f"axiom _root_.MalotReference.{full}{signature}\n", full


def forbidden_mentions(text: str, *, prelude: bool) -> list[str]:
    """Words in the candidate's raw text that the command checker cannot defend against (see the module doc)."""
    found = [w for w in KERNEL_BYPASS if w in text]
    if not prelude:
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
        found += [w for w in SYNTAX_EXTENSIONS if w in words]
        if _TACTIC_ATTRIBUTE.search(text):
            found.append("@[tactic]")
    return found


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:16]


class _VerdictFn(Protocol):
    """The shape of :meth:`FinalChecker.check`'s local verdict builder."""

    def __call__(self, ok: bool, stage: FinalCheckStage, reason: str = "", **extra: object) -> FinalVerdict: ...


_KIND_RE = re.compile(r"^(?:@\[[^\]]*\]\s*)*((?:(?:private|protected|noncomputable|unsafe|partial)\s+)*)(\w+)\s")


class FinalChecker:
    """Runs the final check with a local Lean: ``lean`` (or ``lake env lean`` in ``project``), sandboxed.

    Owns a scratch folder of compiled header and reference modules (reused for every candidate of the same problem);
    use as ``async with FinalChecker(...)`` or call :meth:`aclose`.
    """

    def __init__(
        self,
        lean: str | Path,
        *,
        project: str | Path | None = None,
        sandbox: str = "auto",
        timeout: float = 300.0,
        memory_limit_mb: int | None = None,
        workers: int | None = None,
        lean4checker: bool = False,
    ) -> None:
        self.project = Path(project).resolve() if project is not None else None
        if Path(lean).exists():  # a path: absolute, since Lean runs in the scratch folder
            lean = Path(lean).resolve()
        if self.project is not None:
            lake = shutil.which("lake") or "lake"
            self._argv: list[str] = [lake, "env", str(lean)]
        else:
            self._argv = [str(lean)]
        self.isolation: SandboxKind = resolve_sandbox(sandbox)
        self.timeout = timeout
        self.memory_limit_mb = memory_limit_mb
        self.lean4checker = lean4checker
        self._semaphore = asyncio.Semaphore(workers or max(1, (os.cpu_count() or 2) - 1))
        self._scratch: Path | None = None
        self._built: dict[str, asyncio.Task[str | None]] = {}
        self._axioms: dict[str, frozenset[str]] = {}
        self._running: set[asyncio.subprocess.Process] = set()

    @classmethod
    def from_settings(cls, settings: LeanSettings, *, lean: str | Path | None = None) -> FinalChecker | None:
        """The checker the ``[lean]`` settings allow, or None where no local Lean exists (e.g. Kimina only)."""
        if settings.final_check == "off":
            return None
        project = settings.project.expanduser() if settings.project else None
        exe: str | Path | None = lean or settings.lean_path or os.environ.get("MALOT_LEAN")
        if project is None:
            exe = exe or shutil.which("lean")
            if exe is None or not Path(exe).exists():
                return None
        elif shutil.which("lake") is None:
            return None
        checker = cls(
            exe or "lean",
            project=project,
            sandbox=settings.sandbox,
            timeout=settings.timeout_s,
            memory_limit_mb=settings.memory_limit_mb,
            lean4checker=settings.lean4checker,
        )
        # a Lake project with lean4checker built replays every accepted candidate's module in the kernel
        checker.lean4checker = settings.lean4checker or (
            project is not None and checker.lean4checker_binary() is not None
        )
        return checker

    def describe(self) -> str:
        """One line: which Lean runs the final check and how it is isolated."""
        where = f"lake env lean in {self.project}" if self.project else self._argv[0]
        return f"final check: {where}, isolation={self.isolation}"

    async def __aenter__(self) -> FinalChecker:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Kill any Lean still running and remove the scratch folder."""
        from malot.lean.file_backend import terminate_process

        for task in self._built.values():
            task.cancel()
        await asyncio.gather(*(terminate_process(p) for p in list(self._running)), return_exceptions=True)
        self._built.clear()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _dir(self) -> Path:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="malot-final-"))
        return self._scratch

    async def _lean(self, args: Sequence[str], timeout: float) -> tuple[int | None, str, str]:  # noqa: ASYNC109
        """Run Lean in the scratch folder, sandboxed; ``(exit status or None on timeout, stdout, stderr)``."""
        from malot.lean.file_backend import terminate_process

        scratch = self._dir()
        argv = wrap_command([*self._argv, *args], self.isolation, writable=[scratch], cwd=self.project or scratch)
        env = {**os.environ, "LEAN_PATH": os.pathsep.join(p for p in (str(scratch), os.environ.get("LEAN_PATH")) if p)}
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(self.project or scratch),
            env=env,
            start_new_session=True,
            preexec_fn=limits_preexec(self.memory_limit_mb),
        )
        self._running.add(proc)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            await terminate_process(proc)
            return None, "", ""
        finally:
            if proc.returncode is None:
                await terminate_process(proc)
            self._running.discard(proc)
        return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    async def _compile(self, module: str, text: str, timeout: float) -> tuple[bool, list[LeanMessage], str]:  # noqa: ASYNC109
        """``lean --json -o MODULE.olean MODULE.lean``: (ok, messages, error text)."""
        scratch = self._dir()
        src = scratch / f"{module}.lean"
        src.write_text(text, encoding="utf-8", errors="surrogatepass")
        olean = str(scratch / f"{module}.olean")
        rc, out, err = await self._lean(["--json", f"--root={scratch}", "-o", olean, str(src)], timeout)
        messages, other = parse_json_lines(out)
        if rc is None:
            return False, messages, f"Lean ran past the {timeout:g}s limit"
        errors = [m for m in messages if m.is_error]
        if rc != 0 or errors:
            detail = "; ".join(m.short() for m in errors[:3]) or "\n".join((other + err.splitlines())[-5:]).strip()
            return False, messages, detail or f"Lean exited with status {rc}"
        return True, messages, ""

    async def _trusted_axioms(
        self, header_module: str, prelude: bool, allowed: frozenset[str] | set[str], allow_native: bool
    ) -> frozenset[str]:
        """Which allowed axiom names the trusted environment (the header module alone) declares (cached)."""
        from malot.lean.acceptance import NATIVE_AXIOMS

        names = sorted(set(allowed) | (set(NATIVE_AXIOMS) if allow_native else set()))
        key = _digest("axioms", header_module, *names)
        cached = self._axioms.get(key)
        if cached is not None:
            return cached
        probe = ("prelude\n" if prelude else "") + f"import {header_module}\n"
        first = probe.count("\n") + 1
        probe += "".join(f"#check @{n}\n" for n in names)
        path = self._dir() / f"MalotAxiomProbe_{key}.lean"
        path.write_text(probe, encoding="utf-8")
        _, out, _ = await self._lean(["--json", str(path)], self.timeout)
        messages, _ = parse_json_lines(out)
        # positive evidence only: a '#check' line that answered with its type and no error
        answered = {m.pos.line for m in messages if not m.is_error and m.pos is not None}
        failed = {m.pos.line for m in messages if m.is_error and m.pos is not None}
        found = frozenset(n for i, n in enumerate(names) if first + i in answered and first + i not in failed)
        self._axioms[key] = found
        return found

    async def _once(self, key: str, module: str, text: str) -> str | None:
        """Compile a trusted module once per key (concurrent callers share the build); None when it compiled."""
        task = self._built.get(key)
        if task is None:

            async def build() -> str | None:
                ok, _, detail = await self._compile(module, text, self.timeout)
                return None if ok else detail

            task = asyncio.ensure_future(build())
            self._built[key] = task
        return await asyncio.shield(task)

    async def check(
        self,
        *,
        header: str,
        statement: str,
        name: str,
        body: str,
        trusted_header: bool = True,
        replay: bool | None = None,
        allowed_axioms: frozenset[str] | set[str],
        timeout: float | None = None,  # noqa: ASYNC109
        allow_native: bool = False,
    ) -> FinalVerdict:
        """The final verdict for a candidate whose code after the header is ``body``.

        ``trusted_header=False`` (whole-file mode: the header is the user's own file) applies the raw-text guards
        to the header too.
        """
        started = time.perf_counter()
        iso = self.isolation

        def verdict(ok: bool, stage: FinalCheckStage, reason: str = "", **extra: object) -> FinalVerdict:
            return FinalVerdict(
                ok=ok, stage=stage, reason=reason, isolation=iso, time_s=time.perf_counter() - started, **extra
            )

        parts = split_trusted_header(header)
        bad = forbidden_mentions(body if trusted_header else header + body, prelude=parts.prelude)
        if bad:
            why = ", ".join(sorted(set(bad)))
            return verdict(False, "guard", f"the candidate mentions {why}, which the final check does not admit")
        limit = timeout or self.timeout
        async with self._semaphore:
            head_key = _digest("header", header)
            header_module = f"MalotHeader_{head_key}"
            failed = await self._once(head_key, header_module, header)
            if failed:
                return verdict(False, "header", f"the trusted header does not compile: {failed}")
            prefix = ("prelude\n" if parts.prelude else "") + f"import {header_module}\n"
            prefix += parts.scope + ("\n" if parts.scope else "")
            try:
                axiom, full = reference_declaration(statement, name, parts.namespace)
            except ValueError as exc:
                return verdict(False, "reference", str(exc))
            ref_key = _digest("reference", header, statement, name)
            ref_module = f"MalotReference_{ref_key}"
            failed = await self._once(ref_key, ref_module, prefix + axiom)
            if failed:
                return verdict(False, "reference", f"the reference statement does not elaborate: {failed}")
            cand_module = f"MalotCandidate_{uuid.uuid4().hex[:16]}"
            scratch = self._dir()
            try:
                ok, _, detail = await self._compile(cand_module, prefix + body, limit)
                if not ok:
                    return verdict(False, "compile", f"the candidate does not compile on its own: {detail}")
                checker = (
                    ("prelude\n" if parts.prelude else "")
                    + f"import {ref_module}\nimport {cand_module}\n"
                    + f"theorem MalotFinalCheck.proof : type_of% @MalotReference.{full} := @{full}\n"
                    + "#print axioms MalotFinalCheck.proof\n"
                    + f"#print {full}\n"
                )
                replay_now = self.lean4checker if replay is None else replay
                trusted = await self._trusted_axioms(header_module, parts.prelude, allowed_axioms, allow_native)
                return await self._run_checker(
                    cand_module, checker, allowed_axioms, allow_native, replay_now, limit, verdict, trusted
                )
            finally:
                for suffix in (".lean", ".olean", ".ilean", "_check.lean"):
                    (scratch / f"{cand_module}{suffix}").unlink(missing_ok=True)

    async def _run_checker(
        self,
        cand_module: str,
        checker: str,
        allowed: frozenset[str] | set[str],
        allow_native: bool,
        replay: bool,
        limit: float,
        verdict: _VerdictFn,
        trusted: frozenset[str],
    ) -> FinalVerdict:
        scratch = self._dir()
        path = scratch / f"{cand_module}_check.lean"
        path.write_text(checker, encoding="utf-8")
        rc, out, err = await self._lean(["--json", str(path)], limit)
        messages, other = parse_json_lines(out)
        if rc is None:
            return verdict(False, "type", f"the checker ran past the {limit:g}s limit", messages=messages)
        errors = [m for m in messages if m.is_error]
        if errors or rc != 0:
            detail = "; ".join(m.short() for m in errors[:3]) or "\n".join((other + err.splitlines())[-5:]).strip()
            return verdict(
                False, "type", f"the candidate's theorem does not have the reference type: {detail}", messages=messages
            )
        from malot.lean.acceptance import parse_axioms_message

        by_line = {m.pos.line: m for m in messages if m.pos is not None}
        axioms_msg = by_line.get(checker.count("\n") - 1)
        print_msg = by_line.get(checker.count("\n"))
        axioms = parse_axioms_message(axioms_msg.data) if axioms_msg is not None else None
        kind_match = _KIND_RE.match(print_msg.data) if print_msg is not None else None
        kind = kind_match.group(2) if kind_match else None
        if kind != "theorem":
            what = f"the target is a {kind or 'missing declaration'}, not a theorem"
            return verdict(False, "kind", what, kind=kind, messages=messages)
        if axioms is None:
            return verdict(False, "axioms", "Lean printed no axiom list for the target", kind=kind, messages=messages)
        from malot.lean.acceptance import NATIVE_AXIOMS

        bad = [
            a for a in axioms if a not in allowed and not (allow_native and (a in NATIVE_AXIOMS or "._native." in a))
        ]
        if bad:
            return verdict(
                False, "axioms", "disallowed axioms: " + ", ".join(bad), axioms=axioms, kind=kind, messages=messages
            )
        untrusted = [a for a in axioms if a not in trusted]
        if untrusted:
            # an allowed name that the trusted environment does not declare was declared by the candidate
            why = "axioms named like allowed ones but declared by the candidate: " + ", ".join(untrusted)
            return verdict(False, "axioms", why, axioms=axioms, kind=kind, messages=messages)
        replayed: bool | None = None
        if replay:
            problem, replayed = await self._replay(cand_module, limit)
            if problem is not None:
                return verdict(False, "replay", problem, axioms=axioms, kind=kind, messages=messages, replayed=False)
        return verdict(True, "passed", axioms=axioms, kind=kind, messages=messages, replayed=replayed)

    def lean4checker_binary(self) -> str | None:
        """lean4checker: built in the Lake project (``lake build lean4checker``, see lean_project/), else on PATH."""
        if self.project is not None:
            for pkg in ("lean4checker", "Lean4Checker"):
                built = self.project / ".lake" / "packages" / pkg / ".lake" / "build" / "bin" / "lean4checker"
                if built.is_file():
                    return str(built)
        return shutil.which("lean4checker")

    async def _replay(self, cand_module: str, limit: float) -> tuple[str | None, bool | None]:
        """lean4checker over the candidate module: (the problem or None, whether it ran and passed / None if absent)."""
        exe = self.lean4checker_binary()
        if exe is None:
            return None, None
        scratch = self._dir()
        base = [*self._argv[:-1], exe] if self.project is not None else [exe]  # 'lake env lean4checker' in a project
        argv = wrap_command([*base, cand_module], self.isolation, writable=[scratch], cwd=self.project or scratch)
        env = {**os.environ, "LEAN_PATH": os.pathsep.join(p for p in (str(scratch), os.environ.get("LEAN_PATH")) if p)}
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=str(self.project or scratch),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), limit)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return "lean4checker ran past the time limit", False
        if proc.returncode != 0:
            return "lean4checker rejected the environment: " + out.decode("utf-8", "replace")[-300:], False
        return None, True
