"""Test utilities shipped with malot for its own tests and for users' tests (doubles and fixtures).

Nothing here is a production backend: doubles are named as doubles and fixtures as fixtures.
"""
