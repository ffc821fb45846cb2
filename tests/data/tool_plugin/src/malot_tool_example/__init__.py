"""A tiny malot tool plugin for tests."""
