"""Embed malot's prover in another asyncio application.

The app below runs a heartbeat task of its own while one shared :class:`malot.Prover` proves several theorems
concurrently; each result arrives as soon as it is ready.

    python examples/embed_prover.py --model http://127.0.0.1:8000/v1#prover --project lean_project \\
        "theorem two : (2 : ℕ) = 1 + 1 := by"

``--model`` takes anything malot accepts (an OpenAI-compatible URL, a local model folder, ``script:FILE``). A
scripted model hands out one response per sample and pass (``--samples``, default 4 from the settings; MA-LoT's
LoT templates take two passes per sample), so give it enough lines, or a JSON object mapping prompt substrings to
answers. A statement whose proving fails with an error is reported with the error; the others still finish.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import malot


async def heartbeat(stop: asyncio.Event) -> int:
    """The host application's own work, which keeps running while proofs are searched."""
    beats = 0
    while not stop.is_set():
        beats += 1
        await asyncio.sleep(0.05)
    return beats


async def prove_one(prover: malot.Prover, statement: str) -> dict[str, object]:
    """One statement's outcome; an error (model unreachable, script exhausted, ...) is reported, not raised."""
    try:
        result = await prover.prove(statement)
    except malot.MalotError as exc:
        return {"problem": statement.rsplit("theorem", 1)[-1].split()[0], "proved": False, "error": str(exc)}
    return {"problem": result.problem, "proved": result.proved, "proof": result.proof}


async def main(statements: list[str], settings: malot.Settings) -> list[dict[str, object]]:
    stop = asyncio.Event()
    beats = asyncio.create_task(heartbeat(stop))
    async with malot.Prover(settings) as prover:
        tasks = [asyncio.create_task(prove_one(prover, s)) for s in statements]
        results = [await finished for finished in asyncio.as_completed(tasks)]
    stop.set()
    print(f"heartbeats while proving: {await beats}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("statements", nargs="+", help="Lean statements (a header may precede each theorem)")
    parser.add_argument("--model", help="model string (default: from malot.toml / MALOT_MODEL)")
    parser.add_argument("--lean", help="a lean executable (file backend)")
    parser.add_argument("--project", help="a Lake project with Mathlib and the REPL")
    parser.add_argument("--config", help="a malot.toml")
    parser.add_argument("--samples", type=int, help="samples per statement (default: from the settings, 4)")
    args = parser.parse_args()
    overrides: dict[str, object] = {"llm.model": args.model, "lean.lean_path": args.lean, "lean.project": args.project}
    overrides["prover.samples"] = args.samples
    if args.lean:
        overrides["lean.backend"] = "file"
    try:
        settings = malot.load_settings(args.config, overrides=overrides)
        results = asyncio.run(main(args.statements, settings))
    except malot.MalotError as exc:  # set-up errors (no Lean, bad config): one line, exit 2
        sys.exit(f"error: {exc}")
    print(json.dumps(results, indent=2, ensure_ascii=False))
