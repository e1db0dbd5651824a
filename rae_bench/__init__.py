"""rae_bench: a benchmark and reproduction suite for regularized auto-encoder generative models."""
__version__ = "0.1.0"
