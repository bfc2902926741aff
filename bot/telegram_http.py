"""python-telegram-bot's requests to the Bot API over aiohttp instead of httpx.

PTB's default transport (``HTTPXRequest``) cost the bot more CPU per Bot API call than anything
else once its database work was cut (issue #9): measured on this machine against a local aiohttp
server, 1.1 ms a ``sendMessage`` one at a time and 2.5 ms twenty at a time (httpcore walks its
queue of waiting requests for every connection it hands out), where aiohttp's client took
0.3–0.4 ms (both figures include the server's share). The bot already runs on aiohttp (its own
server, the broker client), so this is no new dependency. Same contract as ``HTTPXRequest``: a
form (``application/x-www-form-urlencoded``) or, with files, ``multipart/form-data`` body; the
status and the raw body back (PTB parses and raises on them); a timeout is
:class:`telegram.error.TimedOut`, any other transport failure :class:`telegram.error.NetworkError`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp.helpers import BasicAuth, get_env_proxy_for_url
from telegram import Bot, InlineKeyboardMarkup, TelegramObject
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from telegram.request._requestparameter import RequestParameter
from yarl import URL

Proxy = tuple[URL | None, BasicAuth | None]
FORM = "application/x-www-form-urlencoded"
# the Defaults (ApplicationBuilder.defaults) that apply to sendMessage
_MESSAGE_DEFAULTS = (
    "parse_mode",
    "disable_notification",
    "protect_content",
    "link_preview_options",
)


def _seconds(given: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(given, DefaultValue) else given


class AiohttpRequest(BaseRequest):
    """A :class:`telegram.request.BaseRequest` on one :class:`aiohttp.ClientSession`; the
    timeouts mean what they mean for ``HTTPXRequest`` (``pool``: waiting for a free connection,
    ``connect``: opening one, ``read``: between bytes of the answer; aiohttp has no write timeout
    of its own, so the whole call is also bounded by their sum)."""

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str | None, int | None], Proxy] = {}

    def _proxy(self, url: str) -> Proxy:
        """The proxy for ``url`` from ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY``, read once
        per host (as httpx reads them once per client). ``trust_env=True`` would have aiohttp
        look them, and ``~/.netrc``, up again in a worker thread on every call: a quarter of a
        bot's CPU in the 200 alerts/s flood."""
        parsed = URL(url)
        key = (parsed.scheme, parsed.host, parsed.port)
        found = self._proxies.get(key)
        if found is None:
            try:
                found = get_env_proxy_for_url(parsed)
            except LookupError:  # no proxy for this scheme, or the host is in NO_PROXY
                found = (None, None)
            self._proxies[key] = found
        return found

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size)
            # HTTPS_PROXY / NO_PROXY from the environment are honoured, as by PTB's httpx
            # transport, through _proxy
            self._session = aiohttp.ClientSession(connector=connector)

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        body: aiohttp.FormData | bytes | None = None
        headers = {"User-Agent": self.USER_AGENT}
        if files:
            form = aiohttp.FormData()
            for name, value in (request_data.json_parameters if request_data else {}).items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            body = form
        elif request_data is not None:
            # the form aiohttp.FormData would make of the dict, without building one per call
            body = urlencode(request_data.json_parameters, doseq=True).encode()
            headers["Content-Type"] = FORM
        read = _seconds(read_timeout, self._read_timeout)
        connect = _seconds(connect_timeout, self._connect_timeout)
        pool = _seconds(pool_timeout, self._pool_timeout)
        write = _seconds(write_timeout, self._media_write_timeout if files else self._write_timeout)
        parts = (pool, connect, write, read)
        timeout = aiohttp.ClientTimeout(
            total=None if None in parts else sum(p for p in parts if p is not None),
            connect=None if pool is None or connect is None else pool + connect,
            sock_connect=connect,
            sock_read=read,
        )
        proxy, proxy_auth = self._proxy(url)
        try:
            async with session.request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=timeout,
                proxy=proxy,
                proxy_auth=proxy_auth,
            ) as response:
                return response.status, await response.read()
        except TimeoutError as e:
            raise TimedOut from e
        except aiohttp.ClientError as e:
            raise NetworkError(f"aiohttp.{type(e).__name__}: {e}") from e


def form_fields(fields: dict[str, str]) -> RequestData:
    """A request's form fields given as the Bot API takes them (each value a string, objects as
    JSON): PTB's ``RequestParameter.from_input`` walks every value looking for files to upload,
    which a text message has none of."""
    return RequestData([RequestParameter(name, value, None) for name, value in fields.items()])


def _form_value(value: object) -> str:
    """A field as PTB's ``RequestParameter`` encodes it: strings as they are, objects as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, TelegramObject):
        return value.to_json()
    return json.dumps(value)


async def send_text(
    bot: Bot,
    chat_id: int,
    text: str,
    reply_markup: InlineKeyboardMarkup | None = None,
    *,
    allow_paid_broadcast: bool = False,
) -> dict[str, Any]:
    """``bot.send_message`` for a message whose answer is not used (the broker's pushes): the
    same request (the same form fields, the bot's defaults such as ``parse_mode``, its rate
    limiter with its retries after a 429) and the same errors (``Forbidden``, ``BadRequest``,
    ``RetryAfter``, ``NetworkError``, … from PTB's own response handling), but the answer is
    left as the Bot API's JSON instead of a :class:`telegram.Message` built from it. In the
    200 alerts/s flood, building the request parameters and the ``Message`` took about a fifth
    of a bot process's CPU. Returns the sent message as JSON."""
    data: dict[str, Any] = {"chat_id": chat_id, "text": text}
    defaults = getattr(bot, "defaults", None)
    if defaults is not None:
        given = defaults.api_defaults
        data.update({k: given[k] for k in _MESSAGE_DEFAULTS if given.get(k) is not None})
    if reply_markup is not None:
        data["reply_markup"] = reply_markup
    if allow_paid_broadcast:
        data["allow_paid_broadcast"] = True
    fields = form_fields({k: _form_value(v) for k, v in data.items()})
    url = f"{bot.base_url}/sendMessage"

    async def post() -> Any:
        return await bot.request.post(url, fields)

    limiter = getattr(bot, "rate_limiter", None)
    if limiter is None:
        result = await post()
    else:
        result = await limiter.process_request(
            callback=post,
            args=(),
            kwargs={},
            endpoint="sendMessage",
            data=data,
            rate_limit_args=None,
        )
    if not isinstance(result, dict):
        raise NetworkError(f"sendMessage answered {type(result).__name__}, not a message")
    return result
