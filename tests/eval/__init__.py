"""Tests of malot.eval."""
