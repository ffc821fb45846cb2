"""Every replayable REPL transcript (core and Mathlib sessions) through the real client code.

The REPL replay double answers with the responses recorded from the real REPL; the client (wire models,
framing, ``ReplProcess``) must send each recorded command exactly and parse each recorded response losslessly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from malot.lean.repl.process import ReplProcess
from malot.lean.repl.protocol import (
    Command,
    CommandResponse,
    ProofStep,
    ProofStepResponse,
    ReplError,
    decode_response,
    encode_command,
    parse_command,
)
from malot.testing.repl_replay import load_transcripts

DATA = Path(__file__).resolve().parents[1] / "data" / "repl_transcripts"
REPLAY = [sys.executable, "-m", "malot.testing.repl_replay"]


def test_manifest_and_loader_agree() -> None:
    manifest = json.loads((DATA / "MANIFEST.json").read_text())
    replayable = sorted(f["fixture"] for f in manifest["fixtures"] if f["replayable"])
    loaded = load_transcripts([str(DATA)])
    assert sorted(t.name for t in loaded) == replayable
    counts = {f["fixture"]: f["commands"] for f in manifest["fixtures"]}
    assert all(len(t.commands) == counts[t.name] for t in loaded)


def test_encoding_never_sends_raw_newlines() -> None:
    raw = encode_command(Command(cmd="theorem x : 1 = 1 := by\n  rfl", env=3, all_tactics=True))
    assert raw.endswith(b"\n\n") and b"\n" not in raw[:-2]
    assert json.loads(raw) == {"cmd": "theorem x : 1 = 1 := by\n  rfl", "env": 3, "allTactics": True}
    assert json.loads(encode_command(ProofStep(tactic="rfl", proof_state=2))) == {"tactic": "rfl", "proofState": 2}


def test_response_kinds() -> None:
    assert isinstance(decode_response({"message": "Unknown environment."}), ReplError)
    assert isinstance(decode_response({"proofState": 1, "goals": [], "proofStatus": "Completed"}), ProofStepResponse)
    assert isinstance(decode_response({"env": 0}), CommandResponse)
    with pytest.raises(ValueError):
        decode_response([1, 2])


async def test_every_replayable_transcript_round_trips_through_the_client() -> None:
    transcripts = load_transcripts([str(DATA)])
    assert len(transcripts) >= 70
    kinds: set[str] = set()
    async with ReplProcess([*REPLAY, "--mode", "sequence", str(DATA)]) as repl:
        for transcript in transcripts:
            for recorded_cmd, recorded_resp in zip(transcript.commands, transcript.responses, strict=True):
                command = parse_command(recorded_cmd)
                assert command.wire() == recorded_cmd, transcript.name  # the model writes what the REPL reads
                response = await repl.send(command, timeout=30)
                assert response.wire() == recorded_resp, transcript.name  # and parses what it wrote, losslessly
                kinds.add(type(response).__name__)
        assert repl.commands_sent == sum(len(t.commands) for t in transcripts)
    assert kinds == {"CommandResponse", "ProofStepResponse", "ReplError"}
    assert not repl.alive
