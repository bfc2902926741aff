"""Telegram's flood control: sliding one-second windows per chat and for the whole bot, plus a
test switch that makes the next k sending calls answer 429 regardless."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW_S = 1.0


@dataclass
class FloodControl:
    """Counts accepted sends; ``check`` answers the seconds to wait, or None to go ahead.

    A limit of 0 turns that window off. Refused calls do not count, as with Telegram.
    """

    per_chat_per_s: int = 30
    global_per_s: int = 1000
    clock: Callable[[], float] = time.monotonic
    forced: int = 0
    forced_retry_after: int = 1
    _chats: dict[int, deque[float]] = field(default_factory=dict)
    _all: deque[float] = field(default_factory=deque)

    def force(self, count: int, retry_after: int) -> None:
        """Make the next ``count`` checks answer ``retry_after``."""
        self.forced, self.forced_retry_after = count, retry_after

    def check(self, chat_id: int) -> int | None:
        """Record a send to ``chat_id`` and return None, or return how long to wait."""
        if self.forced > 0:
            self.forced -= 1
            return self.forced_retry_after
        now = self.clock()
        chat = self._chats.setdefault(chat_id, deque())
        waits = [
            _wait(window, limit, now)
            for window, limit in ((chat, self.per_chat_per_s), (self._all, self.global_per_s))
        ]
        wait = max(w for w in waits)
        if wait > 0:
            return math.ceil(wait)
        chat.append(now)
        self._all.append(now)
        return None


def _wait(window: deque[float], limit: int, now: float) -> float:
    while window and window[0] <= now - WINDOW_S:
        window.popleft()
    if limit <= 0 or len(window) < limit:
        return 0.0
    return window[-limit] + WINDOW_S - now
