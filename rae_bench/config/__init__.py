"""The workflow config: reading it, resolving its runs, and checking it whole.

Three floors, top to bottom (import-linter contracts in pyproject.toml):

* :mod:`~rae_bench.config.validate` -- whole-config checks and ``load_config``; it builds models and samplers
  (on the ``meta`` device), so it sits above them.
* :mod:`~rae_bench.config.resolve` -- sweeps expanded into runs, one resolved config per run, sampler params,
  ``config_hash``, a dataset's extractor and classifier spec; beside ``data``, below the models.
* :mod:`~rae_bench.config.files` -- reading and merging the files, the schema (``config.schema.yaml`` beside
  it, package data) and the schema check.

Import from the submodule that owns a name; this file imports nothing, so that importing the low floors
(as the report jobs do) never pulls in torch through ``validate``.
"""
