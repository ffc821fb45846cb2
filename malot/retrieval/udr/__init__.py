"""UDR: a unified demonstration retriever trained from language-model feedback (see :mod:`.train`).

Submodules: :mod:`.scorers` (feedback: the LM scorer and the offline proxy scorer), :mod:`.sampling` (candidate
lists), :mod:`.loss` (LambdaRank-style list loss plus in-batch cross-entropy), :mod:`.model` (the dual encoder),
:mod:`.train` (iterative mining and training) and :mod:`.retriever` (inference). Torch is imported only inside
the functions that train or encode.
"""

from __future__ import annotations

from malot.retrieval.udr.scorers import FeedbackScorer, LMFeedbackScorer, ProxyScorer, proof_overlap

__all__ = ["FeedbackScorer", "LMFeedbackScorer", "ProxyScorer", "proof_overlap"]
