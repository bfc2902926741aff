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

import aiohttp
from aiohttp.helpers import BasicAuth, get_env_proxy_for_url
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL

Proxy = tuple[URL | None, BasicAuth | None]


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
        body: aiohttp.FormData | dict[str, str] | None = None
        if files:
            form = aiohttp.FormData()
            for name, value in (request_data.json_parameters if request_data else {}).items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            body = form
        elif request_data is not None:
            body = request_data.json_parameters
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
                headers={"User-Agent": self.USER_AGENT},
                timeout=timeout,
                proxy=proxy,
                proxy_auth=proxy_auth,
            ) as response:
                return response.status, await response.read()
        except TimeoutError as e:
            raise TimedOut from e
        except aiohttp.ClientError as e:
            raise NetworkError(f"aiohttp.{type(e).__name__}: {e}") from e
