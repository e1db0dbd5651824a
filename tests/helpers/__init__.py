"""Plain helper functions shared by several test files (fixtures live in tests/conftest.py).

models.py: tiny models and their weights; faults.py: the fault tests' CLI runner, results-folder snapshots
and hostile files.
"""
