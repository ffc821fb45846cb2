"""Small synthetic task streams the tests and claim benchmarks build (Gaussian blobs, shared-structure tasks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from malot_continual.core.data import LabelledData

__all__ = ["blobs", "linear_teacher_task", "paraphrase_corpus"]


def blobs(
    centers: torch.Tensor, n_per_class: int, *, noise: float = 1.0, seed: int = 0, labels: list[int] | None = None
) -> LabelledData:
    """``n_per_class`` Gaussian points around each row of ``centers``; label ``labels[i]`` (default ``i``)."""
    import torch

    from malot_continual.core.data import LabelledData

    g = torch.Generator().manual_seed(seed)
    k, d = centers.shape
    names = labels if labels is not None else list(range(k))
    x = centers.repeat_interleave(n_per_class, 0) + noise * torch.randn(k * n_per_class, d, generator=g)
    y = torch.tensor(names, dtype=torch.long).repeat_interleave(n_per_class)
    return LabelledData(x.float(), y)


def linear_teacher_task(
    projection: torch.Tensor, teacher: torch.Tensor, n: int, *, seed: int = 0, noise: float = 0.0
) -> LabelledData:
    """Inputs ``x = z @ projection`` for standard normal ``z``; label = arg-max of ``z @ teacher`` (+ label noise)."""
    import torch

    from malot_continual.core.data import LabelledData

    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, projection.shape[0], generator=g)
    logits = z @ teacher + noise * torch.randn(n, teacher.shape[1], generator=g)
    return LabelledData((z @ projection).float(), logits.argmax(-1))


_SUBJECTS = (
    "the sum of two even numbers",
    "the product of two odd numbers",
    "the square of a real number",
    "the absolute value of x",
    "the factorial of n",
    "the greatest common divisor of a and b",
    "a geometric series with ratio one half",
    "the binomial coefficient n choose k",
    "the determinant of a rotation matrix",
    "the number of subsets of a finite set",
)
_FACTS = {
    "is even": "is divisible by two",
    "is positive": "is strictly greater than zero",
    "is bounded": "has an upper and a lower bound",
    "is an integer": "is a whole number",
    "is unique": "has exactly one such value",
}


def paraphrase_corpus(n_subjects: int = 8, n_facts: int = 4) -> tuple[Any, list[Any]]:
    """A small retrieval corpus of solved problems and, per problem, a paraphrased query (same index = relevant)."""
    from malot.retrieval.corpus import Corpus, Demonstration

    demos: list[Any] = []
    queries: list[Any] = []
    for subject in _SUBJECTS[:n_subjects]:
        for fact, para in list(_FACTS.items())[:n_facts]:
            i = len(demos)
            demos.append(
                Demonstration(
                    name=f"p{i}",
                    split="train",
                    informal=f"Show that {subject} {fact}.",
                    statement=f"theorem p{i} : True := by",
                    proof="trivial",
                )
            )
            queries.append(
                Demonstration(name=f"q{i}", informal=f"Prove: {subject} {para}.", statement=f"theorem q{i} : True")
            )
    return Corpus(demos), queries
