"""malot: a plugin-based async multi-agent framework for formal theorem proving in Lean 4 with LLM agents.

``import malot`` is light: it loads no model library. Subpackages: :mod:`malot.agents` (the async core),
:mod:`malot.llm`, :mod:`malot.lean`, :mod:`malot.provers`, :mod:`malot.retrieval`, :mod:`malot.tools`,
:mod:`malot.eval`, :mod:`malot.server`.
"""

from malot._version import __version__
from malot.errors import MalotError

__all__ = ["MalotError", "__version__"]
