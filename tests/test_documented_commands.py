"""Every ``malot ...`` command line the docs write is valid, and the ones that can run here do run.

The commands come from ``scripts/setup.sh`` and from the README's shell code blocks and inline code spans
(continuation lines joined, comments dropped, ``&&``/``|``/``;`` chains split). Two levels:

* **parse**: every documented command goes through click's real parsing of the real ``malot`` command tree (every
  option name, choice, range and argument count is checked); only the existence of files named on the command
  line is not checked here (``click.Path(exists=True)``), since the docs name the user's own files. A command the
  CLI lacks (``No such option '--project'``) fails this test, whoever adds it to the docs.
* **run**: the code-block and ``setup.sh`` command lines of the subcommands in :data:`RUNNABLE` (inline code spans
  are prose with placeholders such as ``FILE``: parsed only) run end to end in a scratch folder, in document
  order (so ``eval --resume`` finds the run the line before made), with the named model replaced by a scripted
  model and Lean by the prelude Lean 4.35 fixture (``--project``/``--kimina``/``--lean`` become ``--lean FIXTURE``);
  files the docs name (``Foo.lean``, ``header.lean``, ``answers.jsonl``) are written first. They must exit 0 or 1
  (proved / not proved, accepted / rejected), never 2 (usage or set-up error). An evaluation over a whole dataset
  gets ``--count 1`` so the test stays short. Subcommands not in :data:`RUNNABLE` are parse-only, each with the
  reason in :data:`PARSE_ONLY`; an undocumented-reason subcommand fails the test, so a new command is classified.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from malot.cli.app import cli, main

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "README.md", REPO / "scripts" / "setup.sh"]

#: Subcommand paths whose documented commands run here (with a scripted model and the prelude Lean fixture).
RUNNABLE = {
    ("doctor",),
    ("config", "show"),
    ("prove",),
    ("verify",),
    ("eval", "run"),
    ("eval", "report"),
    ("eval", "compare"),
    ("llm", "generate"),
    ("tools", "list"),
    ("tools", "show"),
    ("tools", "recommend"),
}

#: Subcommand paths that are only parsed, and why they cannot run in this test.
PARSE_ONLY = {
    ("serve",): "a long-running server (never exits by itself); tests/server covers it against a scripted model",
    ("llm", "score"): "the documented line scores with a vLLM engine on a GPU model folder (./models/prover)",
    ("llm", "capabilities"): "the documented line names a user's model ('--model ...')",
    ("dev", "make-tiny-model"): "builds torch models (seconds of CPU); tests/llm builds the same tiny models",
    ("retrieval", "train"): "trains UDR (minutes of CPU; with --scorer lm it needs a served model)",
    ("retrieval", "index"): "builds a dense/hybrid index with a sentence encoder (tests/retrieval cover it)",
    ("retrieval", "query"): "reads an index the train line builds (minutes)",
    ("tools", "run"): "the documented lines merge the user's model checkpoints (a.safetensors, ...)",
    ("trace", "show"): "reads the trace of an earlier run; tests/cli/test_search_cli.py runs it on a search's trace",
    ("agent", "run"): "the documented line needs the checkpoints and script the Python example above writes "
    "(tests/cli/test_agent_cli.py runs the command)",
    ("mcp",): "a long-running MCP server (stdio or HTTP; tests/server/test_mcp.py drives it with the SDK's client)",
    ("llm", "convert-codegen"): "converts a user's CodeGen checkpoint (tests/llm/test_codegen_convert.py covers it)",
}


@dataclass(frozen=True)
class DocumentedCommand:
    """One ``malot`` command line of the docs: where it is written and its arguments after ``malot``."""

    source: str
    line: int
    argv: tuple[str, ...]
    stdin: str | None = None
    inline: bool = False

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: malot {shlex.join(self.argv)}"


def _strip_comment(line: str) -> str:
    """Drop a shell comment: ``#`` at the start of a word, outside quotes (``v1#name`` is not one)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def _shell_lines(text: str) -> Iterator[tuple[int, str]]:
    """Logical shell lines (continuations joined, open quotes carried to the next line) with their line numbers."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("$ "):
            line = line[2:]
        if not pending:
            start = number
        pending = f"{pending}\n{line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        try:
            shlex.split(_strip_comment(pending))
        except ValueError:  # an unclosed quote: the command goes on
            continue
        yield start, _strip_comment(pending)
        pending = ""


def _commands_in(line: str) -> Iterator[tuple[tuple[str, ...], str | None]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    segment: list[str] = []
    for token in [*lexer, ";"]:
        if token in (";", "&&", "||", "|", "&", ";;", "(", ")"):
            stdin = None
            words: list[str] = []
            it = iter(segment)
            for word in it:
                if word in ("<", ">", ">>", "2>"):
                    target = next(it, "")
                    stdin = target if word == "<" else stdin
                else:
                    words.append(word)
            if words and words[0] == "malot":
                yield tuple(words[1:]), stdin
            segment = []
        else:
            segment.append(token)


#: Documented commands whose subcommand runs here but that need what this machine lacks, and why.
RUN_SKIPS = {
    "--ray": "spreads problems over a Ray cluster of GPU model servers (tests/eval/test_ray_backend covers Ray)",
    "--fuse-expert": "fuses a user's large model with expert model folders (plugins/fusion tests use tiny models)",
    "--backend": "names an in-process GPU backend for a user's model folder (./models/prover)",
    "best-first": "needs proof sessions (a REPL pool; the fixture is lean --json): tests/cli/test_search_cli.py",
    "rmaxts": "needs proof sessions (a REPL pool; the fixture is lean --json): tests/cli/test_search_cli.py",
}


def _defaults(script: str) -> dict[str, str]:
    """``NAME="${1:-VALUE}"`` assignments of a shell script: what ``$NAME`` is when no argument is given."""
    return dict(re.findall(r'^(\w+)="\$\{\d+:-([^}]*)\}"', script, re.M))


def _expand(word: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), word)


def documented_commands() -> list[DocumentedCommand]:
    """Every ``malot`` command line in :data:`SOURCES` (README shell blocks and inline code, setup.sh)."""
    out: list[DocumentedCommand] = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(REPO))
        chunks: list[tuple[int, str, bool]] = []
        variables = _defaults(text) if path.suffix == ".sh" else {}
        if path.suffix == ".sh":
            chunks.append((0, text, False))
        else:
            for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
                if match.group(1) in ("bash", "sh", "shell", "console"):
                    chunks.append((text[: match.start(2)].count("\n"), match.group(2), False))
            for match in re.finditer(r"(?<!`)`(malot [^`\n]+)`(?!`)", text):
                usage = re.sub(r"\s*\[-[^\]]*\]", "", match.group(1))  # usage notation: `[--mp-num N]` is optional
                chunks.append((text[: match.start()].count("\n"), usage, True))
        for offset, chunk, inline in chunks:
            for number, line in _shell_lines(chunk):
                for argv, stdin in _commands_in(line):
                    argv = tuple(_expand(word, variables) for word in argv)
                    out.append(DocumentedCommand(name, offset + number, argv, stdin, inline))
    return out


@contextlib.contextmanager
def _files_not_required(command: click.Command) -> Iterator[None]:
    """Let ``click.Path(exists=True)`` accept a missing file while parsing ``command`` (the user's own files)."""
    changed: list[click.Path] = []
    for param in command.params:
        if isinstance(param.type, click.Path) and param.type.exists:
            param.type.exists = False
            changed.append(param.type)
    try:
        yield
    finally:
        for kind in changed:
            kind.exists = True


def parse(argv: tuple[str, ...]) -> tuple[str, ...]:
    """Parse ``malot ARGV`` with the real command tree (no command runs); return the subcommand path."""
    command: click.Command = cli
    with _files_not_required(command):
        ctx = command.make_context("malot", list(argv))
    path: list[str] = []
    while isinstance(command, click.Group):
        args = [*ctx._protected_args, *ctx.args]
        if not args:
            break
        name, sub, rest = command.resolve_command(ctx, args)
        assert name is not None and sub is not None
        path.append(name)
        with _files_not_required(sub):
            ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    return tuple(path)


COMMANDS = documented_commands()


def test_the_docs_hold_the_commands_people_copy() -> None:
    lines = {" ".join(c.argv[:2]) for c in COMMANDS}
    assert {"doctor", "prove --problem", "verify Proof.lean", "eval minif2f", "serve --port"} <= lines
    assert any(c.source == "scripts/setup.sh" and c.argv[0] == "prove" for c in COMMANDS)


@pytest.mark.parametrize("documented", COMMANDS, ids=str)
def test_every_documented_command_parses(documented: DocumentedCommand) -> None:
    try:
        path = parse(documented.argv)
    except click.exceptions.Exit:  # --help / --version
        return
    except click.MissingParameter:
        if not documented.inline:
            raise
        # prose naming a command ('sources for `malot agent run`'): the command must exist
        with pytest.raises(click.exceptions.Exit):
            parse((*documented.argv, "--help"))
        return
    except click.UsageError as exc:
        pytest.fail(f"{documented}: {exc.format_message()}")
    assert path in RUNNABLE or path in PARSE_ONLY, f"{documented}: classify {path} in RUNNABLE or PARSE_ONLY"


# --- running them ------------------------------------------------------------------------------------------------

_LEAN_VALUE_OPTIONS = ("--project", "--kimina", "--lean")
_MODEL_OPTIONS = ("--model", "-m")


def _runnable_argv(argv: tuple[str, ...], path: tuple[str, ...], model: str, lean: Path) -> list[str]:
    """``argv`` with the model made scripted and Lean made the prelude fixture (see the module docstring)."""
    out: list[str] = []
    it = iter(argv)
    for word in it:
        if word in _LEAN_VALUE_OPTIONS or word in _MODEL_OPTIONS:
            next(it, None)
            if word in _MODEL_OPTIONS:
                out += ["--model", model]
            continue
        out.append(word)
    if path in {("prove",), ("verify",), ("eval", "run")} and "--screen-only" not in out:
        out += ["--lean", str(lean)]
    if path == ("prove",):
        out += ["--samples", "1", "--rounds", "0", "--retriever", "none"]
    if path == ("eval", "run") and "--resume" not in out:
        out += ["--count", "1", "--samples", "1", "--no-progress"]
    return out


def _prepare_files(folder: Path, argv: list[str], record: dict[str, str]) -> None:
    """Write the files a documented command names: Lean files (a prelude theorem), headers, scripts, runs."""
    theorem = argv[argv.index("--theorem") + 1] if "--theorem" in argv else record["name"]
    for word in argv:
        value = word[1:] if word.startswith("@") else word
        target = folder / value
        if target.exists() or "/" in value or not value.endswith(".lean"):
            continue
        if "header" in value:
            target.write_text(record["header"], encoding="utf-8")
        else:
            statement = record["statement"].replace(record["name"], theorem)
            target.write_text(record["header"] + statement + "\n  " + record["proof"] + "\n", encoding="utf-8")


@pytest.mark.lean
@pytest.mark.slow
def test_the_runnable_documented_commands_run(
    tmp_path: Path, lean_exe: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.provers.helpers import load_suite

    record = next(r for r in load_suite() if r["name"] == "or_swap")
    script = tmp_path / "answers.jsonl"
    script.write_text(json.dumps({"": f"  {record['proof']}\n```"}), encoding="utf-8")  # every prompt, same answer
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MALOT_MODEL", f"script:{script}")
    monkeypatch.delenv("MALOT_PROJECT", raising=False)
    # the prelude fixture is Lean 4.35, not MiniF2F's pinned 4.24: let the documented eval commands run anyway
    monkeypatch.setenv("MALOT_LEAN__TOOLCHAIN_CHECK", "false")
    monkeypatch.delenv("MALOT_KIMINA", raising=False)
    (tmp_path / "statement.lean").write_text(record["header"] + record["statement"] + "\n", encoding="utf-8")
    ran, failures = [], []
    for documented in COMMANDS:
        try:
            path = parse(documented.argv)
        except click.ClickException:  # prose naming a command without its arguments: checked by the parse test
            continue
        if path not in RUNNABLE or any(option in documented.argv for option in RUN_SKIPS):
            continue
        if documented.inline:  # prose: `malot verify FILE`, `malot prove --strategy agentic` (placeholders, parts)
            continue
        argv = _runnable_argv(documented.argv, path, f"script:{script}", lean_exe)
        _prepare_files(tmp_path, argv, record)
        if path == ("eval", "compare"):
            for run in argv[2:4]:
                if not (tmp_path / run).exists():  # the docs compare two runs; the second is a copy here
                    shutil.copytree(tmp_path / argv[2], tmp_path / run)
        stdin = (tmp_path / documented.stdin).read_text(encoding="utf-8") if documented.stdin else ""
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(argv)
        captured = capsys.readouterr()
        if code not in (0, 1):
            failures.append(f"{documented}\n  ran as: malot {shlex.join(argv)}\n  exit {code}: {captured.err[-600:]}")
        ran.append(path)
    assert not failures, "\n".join(failures)
    assert {("prove",), ("verify",), ("eval", "run"), ("doctor",)} <= set(ran)


def test_no_lean_hint_names_flags_that_exist() -> None:
    """The 'no Lean found' hint names flags of prove, eval, verify and serve alike."""
    from malot.config import LeanSettings
    from malot.lean.select import choose_backend

    detail = choose_backend(LeanSettings(lean_path=None)).detail
    flags = re.findall(r"--[a-z-]+", detail)
    assert flags  # --lean, --project, --kimina
    for name in ("prove", "eval", "verify", "serve"):
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        if isinstance(command, click.Group):
            command = command.commands["run"]
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        missing = [f for f in flags if f not in options]
        assert not missing, f"malot {name} lacks {missing}"
