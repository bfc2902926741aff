"""Telegram's flood control: sliding one-second windows per chat and for the whole bot, plus a
test switch that makes the next k sending calls answer 429 regardless.

Telegram lets a bot send about 30 messages a second for free; above that a message must carry
``allow_paid_broadcast`` (paid in Stars) and the bot may send up to 1000 a second. With
``free_per_s`` set, a send without that flag is refused once the bot's window holds
``free_per_s`` messages (paid ones included); a paid send only meets ``global_per_s``."""

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
    free_per_s: int = 0  # sends without allow_paid_broadcast, for the whole bot (0: no limit)
    clock: Callable[[], float] = time.monotonic
    forced: int = 0
    forced_retry_after: int = 1
    _chats: dict[int, deque[float]] = field(default_factory=dict)
    _all: deque[float] = field(default_factory=deque)

    def force(self, count: int, retry_after: int) -> None:
        """Make the next ``count`` checks answer ``retry_after``."""
        self.forced, self.forced_retry_after = count, retry_after

    def check(self, chat_id: int, *, paid: bool = False) -> int | None:
        """Record a send to ``chat_id`` and return None, or return how long to wait; ``paid``:
        the send carries ``allow_paid_broadcast``."""
        if self.forced > 0:
            self.forced -= 1
            return self.forced_retry_after
        now = self.clock()
        chat = self._chats.setdefault(chat_id, deque())
        waits = [
            _wait(window, limit, now)
            for window, limit in ((chat, self.per_chat_per_s), (self._all, self._bot_limit(paid)))
        ]
        wait = max(w for w in waits)
        if wait > 0:
            return math.ceil(wait)
        chat.append(now)
        self._all.append(now)
        return None

    def _bot_limit(self, paid: bool) -> int:
        if paid or self.free_per_s <= 0:
            return self.global_per_s
        return (
            self.free_per_s if self.global_per_s <= 0 else min(self.free_per_s, self.global_per_s)
        )


def _wait(window: deque[float], limit: int, now: float) -> float:
    while window and window[0] <= now - WINDOW_S:
        window.popleft()
    if limit <= 0 or len(window) < limit:
        return 0.0
    return window[-limit] + WINDOW_S - now
