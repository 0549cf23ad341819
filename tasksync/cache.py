"""Small thread-safe caches of what was decoded or parsed from git objects, by object id.

Objects are immutable, so an entry never goes stale; parsing tasks.md once per blob id is what
keeps repeated operations on a large file cheap. Used by :mod:`.store` only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

from .markdown import Index

T = TypeVar("T")


class Cache(Generic[T]):
    """A small thread-safe LRU map from object id to what was decoded or parsed from it.

    Objects are immutable, so an entry never goes stale; parsing tasks.md once per blob id is
    what keeps repeated operations on a large file cheap.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: T) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


PARSED: Cache[Index] = Cache(16)
TEXTS: Cache[str] = Cache(4096)
NAMES: Cache[dict[str, str]] = Cache(8)  # directory tree id → {file name: blob id}
LOOKED_UP: Cache[bool] = Cache(64)  # directory tree ids read once
