"""malot.llm (see the architecture in README.md)."""
