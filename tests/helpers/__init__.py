"""Plain helper functions shared by several test files (fixtures live in tests/conftest.py)."""
