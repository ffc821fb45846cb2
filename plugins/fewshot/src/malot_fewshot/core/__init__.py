"""Shared math of the fewshot tools: array validation, affinity graphs, small torch training helpers."""
