"""Services that are not there, said in one line: which one, where, and the setting to check.

A newcomer with a moved port or a typo in ``.env`` should read "the Bot API at … is not
reachable; check BOT_API_BASE_URL", not a 90-line traceback from deep inside an HTTP library.
"""

from __future__ import annotations

import aiohttp
from telegram.error import BadRequest, EndPointNotFound, InvalidToken, NetworkError

from bot.runtime import BotRuntime

PROBE_TIMEOUT_S = 3.0


class UnreachableError(RuntimeError):
    """Another service does not answer (or refuses us); the message is the whole story."""

    def __init__(self, service: str, url: str, setting: str, problem: str = "is not reachable"):
        super().__init__(f"{service} at {url} {problem}; check {setting}")


async def start_bot(runtime: BotRuntime, *, api_setting: str = "BOT_API_BASE_URL in .env") -> None:
    """Start the bot; a Bot API that is not there or refuses the token is one clear error
    (``api_setting``: what to tell the person to check)."""
    try:
        await runtime.start()
    except BadRequest:
        raise  # the server is there and answered: a bug of ours, keep the traceback
    except (InvalidToken, EndPointNotFound, NetworkError) as e:
        if runtime.application is not None:  # PTB never finished initializing: close by hand
            await runtime.application.bot.request.shutdown()
        raise _explain(e, runtime.settings.api_base_url, api_setting) from e


def _explain(error: Exception, url: str, api_setting: str) -> UnreachableError:
    if isinstance(error, InvalidToken):
        return UnreachableError("the Bot API", url, "BOT_TOKEN in .env", "refused the bot token")
    if isinstance(error, EndPointNotFound):
        return UnreachableError(
            "the Bot API", url, api_setting, "does not answer as a Telegram Bot API"
        )
    return UnreachableError("the Bot API", url, api_setting)  # refused, reset, timed out, DNS


async def probe(service: str, url: str, setting: str) -> UnreachableError | None:
    """``None`` if anything answers HTTP at ``url`` (any status), else the one-line problem."""
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
    setting = f"{setting} in .env"
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
            await resp.read()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return UnreachableError(service, url, setting)
    return None
