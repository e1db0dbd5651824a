"""In-memory cache of loaded splits, so that each split's files are read once per process.

Cached tensors are shared: callers must treat them as read only (index or
copy them; never modify them in place).
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Hashable, TypeVar

T = TypeVar("T")

_LOCK = threading.RLock()
_CACHE: dict[Hashable, Any] = {}


def memo(key: Hashable, build: Callable[[], T]) -> T:
    """Return the cached value for ``key``, building it on the first call."""
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        value = build()
        _CACHE[key] = value
        return value


def clear_cache() -> None:
    """Forget every loaded split (frees their memory once no one else holds them)."""
    with _LOCK:
        _CACHE.clear()
