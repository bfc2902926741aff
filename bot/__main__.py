"""``python -m bot``: run the bot alone with settings from ``BOT_*`` / ``.env``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from bot import redact
from bot.runtime import BotRuntime
from bot.settings import BotSettings


async def main() -> None:
    redact.install()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    runtime = BotRuntime(BotSettings())
    await runtime.start()
    print(f"bot: {runtime.settings.mode} mode, broker events at {runtime.events_url()}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runtime.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
