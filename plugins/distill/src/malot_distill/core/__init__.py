"""Shared math and file handling of the distill plugin: KD losses, the small MLP format, data files, training."""
