"""malot.server (see the architecture in README.md)."""
