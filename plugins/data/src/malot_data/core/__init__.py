"""Shared math of the data plugin: array files and checks, exact budget splits, entropies, tiny torch models."""
