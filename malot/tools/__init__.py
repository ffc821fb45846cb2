"""malot.tools (see the architecture in README.md)."""
