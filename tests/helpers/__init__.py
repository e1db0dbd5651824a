"""Plain helper functions shared by several test files (fixtures live in tests/conftest.py).

Left for the change that splits test_faults.py by layer and mirrors the package's folders in tests/:
fault_helpers.py, fixtures_data.py and resume_check.py still sit flat beside the test files, and
test_faults.py's docstring on concurrent workflows still says README.md (the text is now docs/errors.md).
"""
