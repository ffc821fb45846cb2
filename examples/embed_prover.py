"""Embed malot's prover in another asyncio application.

The app below runs a heartbeat task of its own while one shared :class:`malot.Prover` proves several theorems
concurrently; each result arrives as soon as it is ready.

    python examples/embed_prover.py --model http://127.0.0.1:8000/v1#prover --project lean_project \\
        "theorem two : (2 : ℕ) = 1 + 1 := by"

``--model`` takes anything malot accepts (an OpenAI-compatible URL, a local model folder, ``script:FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import json

import malot


async def heartbeat(stop: asyncio.Event) -> int:
    """The host application's own work, which keeps running while proofs are searched."""
    beats = 0
    while not stop.is_set():
        beats += 1
        await asyncio.sleep(0.05)
    return beats


async def main(statements: list[str], settings: malot.Settings) -> list[dict[str, object]]:
    stop = asyncio.Event()
    beats = asyncio.create_task(heartbeat(stop))
    async with malot.Prover(settings) as prover:
        tasks = [asyncio.create_task(prover.prove(s)) for s in statements]
        results = []
        for finished in asyncio.as_completed(tasks):
            result = await finished
            results.append({"problem": result.problem, "proved": result.proved, "proof": result.proof})
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
    args = parser.parse_args()
    overrides = {"llm.model": args.model, "lean.lean_path": args.lean, "lean.project": args.project}
    if args.lean:
        overrides["lean.backend"] = "file"
    settings = malot.load_settings(args.config, overrides=overrides)
    print(json.dumps(asyncio.run(main(args.statements, settings)), indent=2, ensure_ascii=False))
