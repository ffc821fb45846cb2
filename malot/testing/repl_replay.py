"""REPL replay double: a small executable that speaks the Lean REPL protocol from recorded transcripts.

A test double for the one boundary that cannot run here (a Lean REPL with Mathlib). It reads commands exactly as
the REPL does (JSON lines up to a blank line) and answers with the responses recorded from the real REPL
(``tests/data/repl_transcripts``: ``*.in`` commands, ``*.expected.out`` responses). Two modes:

- ``sequence`` (default): the transcripts' commands must arrive in recorded order; each gets its recorded answer.
- ``lookup``: any recorded command, in any order, gets its recorded answer; ``env`` ids in commands are ignored
  when matching and answers get fresh ``env`` ids, like a real REPL serving many checks. Pickle commands match by
  kind (any path): ``pickleTo`` writes a marker file at the path, ``unpickleEnvFrom`` needs that file to exist.
  Tactic mode: every proof state handed out (a ``sorry`` of a command, the result of a tactic) gets a fresh id and
  is known by its *history* (the command that opened it and the tactics since); a tactic on a state is answered
  with the response recorded for the same tactic on a state with the same history, in any transcript; an unknown
  state id gets the REPL's ``Unknown proof state.``; a tactic never recorded on that history gets an error reply
  naming the double. ``pickleTo`` + ``proofState`` writes the state's history to the file and
  ``unpickleProofStateFrom`` reads it back (in any process), answering with the recorded goals.
- ``--compose`` (lookup mode): a command that was never recorded but reads ``STATEMENT := by`` + tactics (+ the
  acceptance rule's ``#print axioms NAME``) is answered by following the recorded tactic responses from the
  recorded ``STATEMENT := by sorry``: no messages (and ``'NAME' does not depend on any axioms`` for the print) when
  every step was recorded and the last one reports ``Completed`` without errors, else the failing step's error.
  This composes recorded data, it does not elaborate Lean: it lets tests drive a whole-proof re-check of proofs
  found in tactic mode through the acceptance rule; it cannot show that Lean would accept them.

Fault modes, for testing the pool's recovery: ``--crash-after N`` (exit without answering command N+1),
``--hang-after N`` (stop answering), ``--garbage-after N`` (answer with non-JSON), ``--slow-start S`` (sleep before
reading), ``--memory-blowup-after N`` (allocate until the memory cap kills it), and ``--fault-rate P`` (each process
picks one of crash/hang/garbage with probability P, after a random number of commands; ``--fault-seed`` seeds it;
with ``--fault-counter FILE`` exactly that fraction of the started processes is faulty; with ``--crash-once-after N``
only the first process started crashes, after N answers). ``--delay S`` answers each command S seconds after
reading it (the double's own work included), standing in for Lean's work.

Run: ``python -m malot.testing.repl_replay --mode lookup tests/data/repl_transcripts``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

from malot.lean.tactics import split_tactics

__all__ = ["Transcript", "load_transcripts", "main", "read_blocks", "split_tactics"]


def read_blocks(text: str, join: str = "") -> list[str]:
    """Split REPL framing: blocks separated by blank lines; lines in a block joined after trailing whitespace."""
    blocks: list[str] = []
    current: list[str] = []
    for line in text.split("\n"):
        if line.strip() == "":
            if current:
                blocks.append(join.join(current))
                current = []
        else:
            current.append(line.rstrip())
    if current:
        blocks.append(join.join(current))
    return blocks


class Transcript:
    """One recorded REPL session: its commands (decoded JSON) and the recorded responses (decoded JSON)."""

    def __init__(self, name: str, commands: list[dict[str, Any]], responses: list[Any]) -> None:
        self.name = name
        self.commands = commands
        self.responses = responses

    @classmethod
    def load(cls, stem: Path, name: str | None = None) -> Transcript:
        """From ``stem.in`` and ``stem.expected.out``."""
        commands = [json.loads(b) for b in read_blocks(stem.with_name(stem.name + ".in").read_text("utf-8"))]
        out = stem.with_name(stem.name + ".expected.out").read_text("utf-8")
        responses = [json.loads(b) for b in read_blocks(out, join="\n")]
        if len(commands) != len(responses):
            raise ValueError(f"{stem}: {len(commands)} commands but {len(responses)} responses")
        return cls(name or stem.name, commands, responses)


def load_transcripts(paths: list[str]) -> list[Transcript]:
    """Transcripts from folders (every replayable ``*.in`` below them, sorted) or single stems/files."""
    out: list[Transcript] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for stem_in in sorted(path.rglob("*.in")):
                stem = stem_in.with_suffix("")
                if stem.with_name(stem.name + ".expected.out").is_file():
                    out.append(Transcript.load(stem, str(stem.relative_to(path))))
        else:
            stem = path.with_suffix("") if path.suffix == ".in" else path
            out.append(Transcript.load(stem, stem.name))
    return out


def _key(command: dict[str, Any]) -> str:
    norm = {k: (v.strip() if isinstance(v, str) else v) for k, v in command.items() if k != "env"}
    return json.dumps(norm, sort_keys=True, ensure_ascii=False)


History = tuple[str, ...]
_WS = re.compile(r"\s+")


def _squash(text: str) -> str:
    return _WS.sub(" ", text).strip()


class _TacticIndex:
    """Recorded proof states by history, and recorded tactic steps by (history, tactic)."""

    def __init__(self, transcripts: list[Transcript]) -> None:
        self.steps: dict[tuple[History, str], Any] = {}
        self.goals: dict[History, list[str]] = {}
        self.sorry_cmds: dict[str, str] = {}  # squashed 'STATEMENT := by sorry' -> command key
        for t in transcripts:
            known: dict[Any, History] = {}
            for c, r in zip(t.commands, t.responses, strict=True):
                if not isinstance(r, dict):
                    continue
                if "cmd" in c:
                    key = _key(c)
                    if set(c) <= {"cmd", "env"}:
                        self.sorry_cmds.setdefault(_squash(str(c["cmd"])), key)
                    for kind, field in (("sorry", "sorries"), ("tactic", "tactics")):
                        for j, item in enumerate(r.get(field) or []):
                            if isinstance(item, dict) and "proofState" in item:
                                hist: History = (key, kind, str(j))
                                known[item["proofState"]] = hist
                                self.goals.setdefault(hist, [str(item.get("goal", item.get("goals", "")))])
                elif "tactic" in c and c.get("proofState") in known:
                    parent = known[c["proofState"]]
                    tactic = str(c["tactic"]).strip()
                    self.steps.setdefault((parent, tactic), r)
                    if "proofState" in r:
                        hist = (*parent, tactic)
                        known[r["proofState"]] = hist
                        self.goals.setdefault(hist, list(r.get("goals") or []))
                        for j, item in enumerate(r.get("sorries") or []):
                            if isinstance(item, dict) and "proofState" in item:
                                sub = (*hist, "sorry", str(j))
                                known[item["proofState"]] = sub
                                self.goals.setdefault(sub, [str(item.get("goal", ""))])


class ReplayRepl:
    """The double's state: recorded answers, mode, faults."""

    def __init__(self, transcripts: list[Transcript], args: argparse.Namespace) -> None:
        self.mode: str = args.mode
        self.sequence = [(c, r) for t in transcripts for c, r in zip(t.commands, t.responses, strict=True)]
        self.lookup: dict[str, Any] = {}
        for t in transcripts:
            for c, r in zip(t.commands, t.responses, strict=True):
                self.lookup.setdefault(_key(c), r)
        self.position = 0
        self.tactics = _TacticIndex(transcripts)
        self.compose: bool = bool(getattr(args, "compose", False))
        self.states: dict[int, History] = {}
        self.next_state = 0
        self.next_env = 0
        self.answered = 0
        self.delay: float = args.delay
        self.crash_after: int | None = args.crash_after
        self.hang_after: int | None = args.hang_after
        self.garbage_after: int | None = args.garbage_after
        self.blowup_after: int | None = args.memory_blowup_after
        if args.fault_rate > 0:
            self._pick_fault(args)
        if args.crash_once_after is not None and args.fault_counter:
            try:
                with open(args.fault_counter, "x") as fh:  # the first process creates the file and is the faulty one
                    fh.write("1")
                self.crash_after = args.crash_once_after
            except FileExistsError:
                pass

    def _pick_fault(self, args: argparse.Namespace) -> None:
        """Become faulty with probability ``--fault-rate``; with ``--fault-counter FILE``, exactly that fraction
        of the processes started (the i-th process reads and bumps the counter under a file lock)."""
        if args.fault_counter:
            import fcntl

            with open(args.fault_counter, "a+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                fh.seek(0)
                i = int(fh.read().strip() or 0)
                fh.seek(0)
                fh.truncate()
                fh.write(str(i + 1))
            faulty = int((i + 1) * args.fault_rate) > int(i * args.fault_rate)
            rng = random.Random(f"{args.fault_seed}-{i}")
            fault = ["crash", "hang", "garbage"][int(i * args.fault_rate) % 3]
        else:
            rng = random.Random(f"{args.fault_seed}-{os.getpid()}-{time.time_ns()}")
            faulty = rng.random() < args.fault_rate
            fault = rng.choice(["crash", "hang", "garbage"])
        if faulty:
            setattr(self, f"{fault}_after", rng.randint(0, args.fault_max_after))

    def answer(self, command: dict[str, Any]) -> str:
        if self.mode == "sequence":
            if self.position >= len(self.sequence):
                return json.dumps({"message": "replay double: no more recorded commands"})
            expected, response = self.sequence[self.position]
            self.position += 1
            if command != expected:
                return json.dumps({"message": f"replay double: expected command {json.dumps(expected)[:200]}"})
            return json.dumps(response, ensure_ascii=False, indent=1)
        if "tactic" in command:
            return self._tactic(command)
        if "unpickleProofStateFrom" in command or ("pickleTo" in command and "proofState" in command):
            return self._pickled_state(command)
        if "pickleTo" in command or "unpickleEnvFrom" in command:
            # Pickle files are real: the double writes a marker so a later unpickle (maybe in another process)
            # finds it, and answers with the recorded response of a recorded pickle command.
            path = Path(str(command.get("pickleTo") or command.get("unpickleEnvFrom")))
            if "pickleTo" in command:
                path.write_text("replay-double pickle\n")
            elif not path.is_file():
                return json.dumps({"message": f"unknown file {path}"})
            kind = "pickleTo" if "pickleTo" in command else "unpickleEnvFrom"
            response = next((r for c, r in self.sequence if kind in c and "proofState" not in c), None)
        else:
            response = self.lookup.get(_key(command))
            if response is None and set(command) <= {"cmd", "env"}:  # the same text, spaced differently
                key = self.tactics.sorry_cmds.get(_squash(str(command["cmd"])))
                response = self.lookup.get(key) if key is not None else None
                command = json.loads(key) if key is not None else command
            if response is not None and "cmd" in command:
                response = self._renumber(response, lambda kind, j: (_key(command), kind, str(j)))
            elif response is None and self.compose and "cmd" in command:
                response = self._composed(str(command["cmd"]))
        if response is None:
            return json.dumps({"message": "replay double: no recorded response for this command"})
        if isinstance(response, dict) and "env" in response:
            response = {**response, "env": self.next_env}
            self.next_env += 1
        return json.dumps(response, ensure_ascii=False, indent=1)

    def _fresh(self, history: History) -> int:
        sid = self.next_state
        self.next_state += 1
        self.states[sid] = history
        return sid

    def _renumber(self, response: Any, history_of: Any) -> Any:
        """``response`` with every proof state (sorries, allTactics) replaced by a fresh id for its history."""
        if not isinstance(response, dict):
            return response
        out = dict(response)
        for kind, field in (("sorry", "sorries"), ("tactic", "tactics")):
            items = out.get(field)
            if isinstance(items, list):
                out[field] = [
                    {**item, "proofState": self._fresh(history_of(kind, j))}
                    if isinstance(item, dict) and "proofState" in item
                    else item
                    for j, item in enumerate(items)
                ]
        return out

    def _tactic(self, command: dict[str, Any]) -> str:
        history = self.states.get(command.get("proofState", -1)) if isinstance(command.get("proofState"), int) else None
        if history is None:
            return json.dumps({"message": "Unknown proof state."})
        tactic = str(command["tactic"]).strip()
        recorded = self.tactics.steps.get((history, tactic))
        if recorded is None:
            return json.dumps({"message": f"replay double: no recorded response for tactic {tactic[:80]!r} here"})
        new = (*history, tactic)
        response = self._renumber(recorded, lambda kind, j: (*new, kind, str(j)))
        if isinstance(response, dict) and "proofState" in response:
            response["proofState"] = self._fresh(new)
        return json.dumps(response, ensure_ascii=False, indent=1)

    def _pickled_state(self, command: dict[str, Any]) -> str:
        if "pickleTo" in command:
            history = self.states.get(command.get("proofState", -1))
            if history is None:
                return json.dumps({"message": "Unknown proof state."})
            Path(str(command["pickleTo"])).write_text(json.dumps(list(history), ensure_ascii=False))
            goals = self.tactics.goals.get(history, [])
            return json.dumps({"proofState": command["proofState"], "goals": goals, "proofStatus": _status(goals)})
        path = Path(str(command["unpickleProofStateFrom"]))
        if not path.is_file():
            return json.dumps({"message": f"unknown file {path}"})
        history = tuple(json.loads(path.read_text()))
        goals = self.tactics.goals.get(history, [])
        return json.dumps({"proofState": self._fresh(history), "goals": goals, "proofStatus": _status(goals)})

    def _composed(self, text: str) -> Any:
        """A whole tactic proof answered from recorded steps (see ``--compose`` in the module docstring)."""
        lines = text.split("\n")
        prints = [(i + 1, m.group(1)) for i, line in enumerate(lines) if (m := _PRINT_AXIOMS.match(line))]
        body = "\n".join(line for line in lines if not _PRINT_AXIOMS.match(line))
        head, sep, block = body.partition(":= by")
        key = self.tactics.sorry_cmds.get(_squash(head + ":= by sorry")) if sep else None
        if key is None:
            return None
        history: History = (key, "sorry", "0")
        last: Any = None
        for tactic in split_tactics(block):
            last = self.tactics.steps.get((history, tactic))
            if last is None or not isinstance(last, dict) or "proofState" not in last:
                error = last.get("message") if isinstance(last, dict) else None
                return _error_response(error or f"replay double: no recorded step for {tactic[:80]!r}")
            errors = [m for m in last.get("messages") or [] if m.get("severity") == "error"]
            if errors:
                return _error_response(str(errors[0].get("data", "error")))
            history = (*history, tactic)
        if last is None or last.get("goals") or last.get("proofStatus") != "Completed":
            status = last.get("proofStatus") if isinstance(last, dict) else "no tactics"
            return _error_response(f"replay double: the recorded steps do not complete the proof ({status})")
        messages = [
            {
                "severity": "info",
                "pos": {"line": line, "column": 0},
                "endPos": {"line": line, "column": 13},
                "data": f"'{name}' does not depend on any axioms",
            }
            for line, name in prints
        ]
        return {"env": 0, "messages": messages}


_PRINT_AXIOMS = re.compile(r"^#print axioms\s+(\S+)\s*$")


def _status(goals: list[str]) -> str:
    return "Completed" if not goals else "Incomplete: open goals remain"


def _error_response(text: str) -> dict[str, Any]:
    return {
        "env": 0,
        "messages": [
            {"severity": "error", "pos": {"line": 1, "column": 0}, "endPos": {"line": 1, "column": 0}, "data": text}
        ],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the double on stdin/stdout until end of input."""
    parser = argparse.ArgumentParser(prog="python -m malot.testing.repl_replay", description=__doc__.split("\n")[0])
    parser.add_argument("transcripts", nargs="+", help="transcript folders or stems (path/to/name)")
    parser.add_argument("--mode", choices=["sequence", "lookup"], default="sequence")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--compose", action="store_true", help="answer whole tactic proofs from recorded steps")
    parser.add_argument("--crash-after", type=int)
    parser.add_argument("--hang-after", type=int)
    parser.add_argument("--garbage-after", type=int)
    parser.add_argument("--memory-blowup-after", type=int)
    parser.add_argument("--slow-start", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--fault-seed", default="0")
    parser.add_argument("--fault-max-after", type=int, default=20)
    parser.add_argument("--fault-counter", help="file counting started processes (exact fault fraction)")
    parser.add_argument(
        "--crash-once-after", type=int, help="with --fault-counter FILE: only the first process started crashes"
    )
    args = parser.parse_args(argv)
    repl = ReplayRepl(load_transcripts(args.transcripts), args)
    if args.slow_start:
        time.sleep(args.slow_start)
    stdin = sys.stdin.buffer
    out = sys.stdout.buffer
    lines: list[str] = []
    while True:
        raw = stdin.readline()
        if not raw:
            return 0
        line = raw.decode("utf-8").rstrip()
        if line:
            lines.append(line)
            continue
        if not lines:
            continue
        text, lines = "".join(lines), []
        received = time.perf_counter()
        n = repl.answered
        if repl.crash_after is not None and n >= repl.crash_after:
            os._exit(3)
        if repl.hang_after is not None and n >= repl.hang_after:
            while True:
                time.sleep(3600)
        if repl.blowup_after is not None and n >= repl.blowup_after:
            hog = []
            while True:
                hog.append(bytearray(64 * 1024 * 1024))
        if repl.garbage_after is not None and n >= repl.garbage_after:
            out.write(b"\x00\xffthis is not JSON {{{\n\n")
            out.flush()
            repl.answered += 1
            continue
        try:
            command = json.loads(text)
        except json.JSONDecodeError:
            reply = json.dumps({"message": "Could not parse JSON"})
        else:
            reply = repl.answer(command) if isinstance(command, dict) else json.dumps({"message": "not an object"})
        if repl.delay:  # the answer leaves `delay` seconds after the command arrived, the double's own work included
            time.sleep(max(0.0, repl.delay - (time.perf_counter() - received)))
        out.write(reply.encode("utf-8") + b"\n\n")
        out.flush()
        repl.answered += 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
