"""REPL replay double: a small executable that speaks the Lean REPL protocol from recorded transcripts.

A test double for the one boundary that cannot run here (a Lean REPL with Mathlib). It reads commands exactly as
the REPL does (JSON lines up to a blank line) and answers with the responses recorded from the real REPL
(``tests/data/repl_transcripts``: ``*.in`` commands, ``*.expected.out`` responses). Two modes:

- ``sequence`` (default): the transcripts' commands must arrive in recorded order; each gets its recorded answer.
- ``lookup``: any recorded command, in any order, gets its recorded answer; ``env`` ids in commands are ignored
  when matching and answers get fresh ``env`` ids, like a real REPL serving many checks. Pickle commands match by
  kind (any path): ``pickleTo`` writes a marker file at the path, ``unpickleEnvFrom`` needs that file to exist.

Fault modes, for testing the pool's recovery: ``--crash-after N`` (exit without answering command N+1),
``--hang-after N`` (stop answering), ``--garbage-after N`` (answer with non-JSON), ``--slow-start S`` (sleep before
reading), ``--memory-blowup-after N`` (allocate until the memory cap kills it), and ``--fault-rate P`` (each process
picks one of crash/hang/garbage with probability P, after a random number of commands; ``--fault-seed`` seeds it;
with ``--fault-counter FILE`` exactly that fraction of the started processes is faulty). ``--delay S`` waits
S seconds before each answer, standing in for Lean's work.

Run: ``python -m malot.testing.repl_replay --mode lookup tests/data/repl_transcripts``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["Transcript", "load_transcripts", "main", "read_blocks"]


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
        self.next_env = 0
        self.answered = 0
        self.delay: float = args.delay
        self.crash_after: int | None = args.crash_after
        self.hang_after: int | None = args.hang_after
        self.garbage_after: int | None = args.garbage_after
        self.blowup_after: int | None = args.memory_blowup_after
        if args.fault_rate > 0:
            self._pick_fault(args)

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
        if response is None:
            return json.dumps({"message": "replay double: no recorded response for this command"})
        if isinstance(response, dict) and "env" in response:
            response = {**response, "env": self.next_env}
            self.next_env += 1
        return json.dumps(response, ensure_ascii=False, indent=1)


def main(argv: list[str] | None = None) -> int:
    """Run the double on stdin/stdout until end of input."""
    parser = argparse.ArgumentParser(prog="python -m malot.testing.repl_replay", description=__doc__.split("\n")[0])
    parser.add_argument("transcripts", nargs="+", help="transcript folders or stems (path/to/name)")
    parser.add_argument("--mode", choices=["sequence", "lookup"], default="sequence")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--crash-after", type=int)
    parser.add_argument("--hang-after", type=int)
    parser.add_argument("--garbage-after", type=int)
    parser.add_argument("--memory-blowup-after", type=int)
    parser.add_argument("--slow-start", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--fault-seed", default="0")
    parser.add_argument("--fault-max-after", type=int, default=20)
    parser.add_argument("--fault-counter", help="file counting started processes (exact fault fraction)")
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
        if repl.delay:
            time.sleep(repl.delay)
        out.write(reply.encode("utf-8") + b"\n\n")
        out.flush()
        repl.answered += 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
