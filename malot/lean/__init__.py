"""malot.lean (see the architecture in README.md)."""
