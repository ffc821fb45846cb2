"""How problems and demonstrations become retriever inputs and prompt text.

UDR prefixes every query and candidate with a task instruction so one retriever can serve several tasks; a
candidate is the instruction, the problem, a tab, then the worked answer (here: the statement and its proof).
"""

from __future__ import annotations

from collections.abc import Sequence

from malot.retrieval.corpus import Demonstration

__all__ = ["LEAN_PROOF_INSTRUCTION", "candidate_text", "input_text", "prompt_order", "query_text"]

#: The task instruction for proving Lean 4 theorems (other tasks pass their own).
LEAN_PROOF_INSTRUCTION = "Complete the proof of the following Lean 4 theorem."


def input_text(demo: Demonstration) -> str:
    """The problem without instruction: informal text (if any) and the Lean statement."""
    return demo.input_text


def query_text(demo: Demonstration, instruction: str = LEAN_PROOF_INSTRUCTION) -> str:
    """The instruction-prefixed query: the instruction, then the problem."""
    return f"{instruction}\n{demo.input_text}" if instruction else demo.input_text


def candidate_text(demo: Demonstration, instruction: str = LEAN_PROOF_INSTRUCTION) -> str:
    """The instruction-prefixed candidate: instruction, problem, a tab, then the statement with its proof."""
    head = f"{instruction}\n{demo.input_text}" if instruction else demo.input_text
    return f"{head}\t{demo.code}"


def prompt_order(demos: Sequence[Demonstration]) -> list[Demonstration]:
    """Reorder retrieval results (most relevant first) for a prompt: the most relevant goes last, next to the target.

    ``Retriever.retrieve`` returns the best demonstration first; prompts place demonstrations in the reverse order
    so the closest example sits just before the problem being solved, as UDR does at inference.
    """
    return list(reversed(demos))
