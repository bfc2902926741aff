"""``python -m bot``: run the bot alone with settings from ``BOT_*`` / ``.env``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

from bot import redact
from bot.runtime import BotRuntime
from bot.settings import BotSettings


async def main(start: Callable[[BotRuntime], Awaitable[None]] = BotRuntime.start) -> None:
    """Run until a signal; ``start`` lets ``chatbank bot`` turn start-up failures into one line."""
    redact.install()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    runtime = BotRuntime(BotSettings())
    try:
        await start(runtime)
        mode, events = runtime.settings.mode, runtime.events_url()
        print(f"bot: {mode} mode, broker events at {events}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runtime.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
