"""First-run wiring for ``chatbank up``: an admin token for the broker, and the bot registered as
the broker's platform client, both kept under the data folder so a restart reuses them (the
bot's users stay linked: a platform client can only reach the subjects it created)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import aiohttp

# the bot takes the broker's messages up to this many per signed webhook POST (one signature,
# one nonce, one HTTP exchange for all of them; consent.outbox.relay, bot.events)
BOT_WEBHOOK_BATCH = 32


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def admin_token(folder: Path) -> str:
    """The broker's admin token for this data folder (created on first run)."""
    path = folder / "keys" / "broker-admin-token"
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(32))
    return path.read_text().strip()


def handle_secret(folder: Path) -> str:
    path = folder / "keys" / "broker-handle-secret"
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(32))
    return path.read_text().strip()


async def bot_client(folder: Path, broker_url: str, admin: str, webhook_url: str) -> dict[str, Any]:
    """The bot's platform-client credential and webhook secret, registered once."""
    path = folder / "keys" / "bot-client.json"
    if path.exists():
        saved: dict[str, Any] = json.loads(path.read_text())
        if saved.get("webhook_url") == webhook_url:
            return saved
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{broker_url}/admin/v1/platform-clients",
            json={
                "name": "chatbank-bot",
                "webhook_url": webhook_url,
                "webhook_batch_max": BOT_WEBHOOK_BATCH,
            },
            headers={"Authorization": f"Bearer {admin}"},
        ) as resp,
    ):
        body = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"the broker refused to register the bot: {body}")
    saved = {**body, "webhook_url": webhook_url}
    _write_private(path, json.dumps(saved))
    return saved
