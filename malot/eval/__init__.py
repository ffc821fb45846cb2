"""malot.eval (see the architecture in README.md)."""
