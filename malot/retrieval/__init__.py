"""malot.retrieval (see the architecture in README.md)."""
