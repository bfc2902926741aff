"""A test-only switch that holds the bot's ``sendMessage`` calls inside localchat.

While on, every new ``sendMessage`` waits here before anything is checked or recorded; turning it
off answers each waiting call with an error and records nothing, as if the Bot API had failed.
Crash tests use it to kill the bot only when no message the chat accepted is still unrecorded by
the bot: they hold the sends, wait until the bot has recorded every send already answered, kill
it (the held sends are then in flight for the dead bot) and release them. Off unless a test turns
it on (``POST /api/hold-sends``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class SendHold:
    on: bool = False
    held: int = 0  # sendMessage calls waiting now
    _gate: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        if not self.on:
            self.on = True
            self._gate = asyncio.Event()

    def release(self) -> None:
        """Stop holding; the calls waiting now return (and are answered with an error)."""
        self.on = False
        self._gate.set()

    async def wait(self) -> None:
        """Wait (if holding) until :meth:`release`."""
        if not self.on:
            return
        gate = self._gate
        self.held += 1
        try:
            await gate.wait()
        finally:
            self.held -= 1
