"""malot.provers (see the architecture in README.md)."""
