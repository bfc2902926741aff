"""ChatDriver: plays the human side of a chat against a running localchat server."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import aiohttp

Message = dict[str, Any]


class ChatDriver:
    """Send text, press buttons and wait for the bot's answers, all over localchat's /api."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/")
        self._session = aiohttp.ClientSession()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        async with self._session.post(f"{self._base}{path}", json=body) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def _get(self, path: str, **query: str) -> Any:
        async with self._session.get(f"{self._base}{path}", params=query) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def send(self, user_id: int, text: str, *, chat_id: int | None = None) -> Message:
        """``user_id`` writes ``text`` in their private chat, or in group ``chat_id``."""
        body: dict[str, Any] = {"user_id": user_id, "text": text}
        if chat_id is not None:
            body["chat_id"] = chat_id
        result: Message = await self._post("/api/send", body)
        return result

    async def press(
        self, user_id: int, message_id: int, data: str, *, chat_id: int | None = None
    ) -> str:
        """``user_id`` presses a button of a message in their chat, or in chat ``chat_id``
        (a group, or someone else's private chat: what Telegram would never deliver, for
        testing that the bot refuses it)."""
        body: dict[str, Any] = {"user_id": user_id, "message_id": message_id, "data": data}
        if chat_id is not None:
            body["chat_id"] = chat_id
        result = await self._post("/api/press", body)
        return str(result["callback_query_id"])

    async def add_group(self, chat_id: int, title: str = "group") -> None:
        """Create group chat ``chat_id`` (negative) where every known user may write."""
        await self._post("/api/groups", {"chat_id": chat_id, "title": title})

    async def file(self, file_id: str) -> bytes:
        """The bytes of a file the bot sent."""
        async with self._session.get(f"{self._base}/api/files/{file_id}") as resp:
            resp.raise_for_status()
            return await resp.read()

    async def flood(self, count: int, retry_after: int) -> None:
        """Make the bot's next ``count`` sends or edits answer 429 (retry after ``retry_after``)."""
        await self._post("/api/flood", {"count": count, "retry_after": retry_after})

    async def block(self, user_id: int, *, blocked: bool = True) -> None:
        """The user blocks the bot (or unblocks it with ``blocked=False``)."""
        await self._post("/api/block", {"user_id": user_id, "blocked": blocked})

    async def messages(self, user_id: int) -> list[Message]:
        result: list[Message] = await self._get(f"/api/messages/{user_id}")
        return result

    async def callback_answers(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._get("/api/callback-answers")
        return result

    async def chat_actions(self) -> list[dict[str, Any]]:
        """Every sendChatAction the bot made ({"chat_id", "action", "date"}), in order."""
        result: list[dict[str, Any]] = await self._get("/api/chat-actions")
        return result

    async def wait_for(
        self,
        user_id: int,
        predicate: Callable[[list[Message]], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 - the brief names this parameter
    ) -> list[Message]:
        """Return the chat's messages once ``predicate`` holds; long-polls, never sleeps."""
        deadline = time.monotonic() + timeout
        version = 0
        while True:
            current = await self.messages(user_id)
            if predicate(current):
                return current
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"chat {user_id} never matched; last seen: {current!r}")
            changes = await self._get("/api/changes", after=str(version), timeout=str(left))
            version = int(changes["version"])
