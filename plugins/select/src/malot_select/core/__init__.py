"""Shared math of the select plugin: array checks, transferability base scores (LogME, LEEP, NLEEP, SFDA)."""
