"""A small time-bounded cache for values that are costly to look up and safe to hold briefly."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(
        self, ttl: timedelta, clock: Callable[[], datetime], max_items: int = 10_000
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_items = max_items
        self._items: OrderedDict[str, tuple[V, datetime]] = OrderedDict()

    def get(self, key: str) -> V | None:
        hit = self._items.get(key)
        if hit is None:
            return None
        value, until = hit
        if until <= self.clock():
            del self._items[key]
            return None
        return value

    def put(self, key: str, value: V) -> None:
        self._items[key] = (value, self.clock() + self.ttl)
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def drop(self, key: str) -> None:
        self._items.pop(key, None)
