"""A flood of fraud alerts through a :class:`chatbank.cluster.Cluster`: users linked through the
brokers' proxy (sandbox approval), their chats known to the bots, and suspicious payments booked
at the bank at a steady rate, each with a merchant name that makes its alert recognisable in the
chat. Shared by the two-of-everything system test and ``bench.alert_latency --postgres``."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from bench.services import link
from chatbank.cluster import Cluster

ALERT_SCOPES = ["fraud_alerts", "card_controls"]
MERCHANT = "Bench Shop "
KEY = re.compile(r"Bench Shop (\d{6})")


def chat_ids(users: int) -> list[int]:
    return [5000 + i for i in range(users)]


def localchat_users(users: int) -> str:
    """``LOCALCHAT_USERS`` for ``users`` English-speaking chats."""
    return json.dumps(
        [{"id": c, "first_name": f"U{c}", "language_code": "en"} for c in chat_ids(users)]
    )


async def warm_bank(http: aiohttp.ClientSession, bank: str, accounts: list[str]) -> None:
    """Have the mock bank build each account's 90-day history now. It builds it lazily on an
    account's first use (~16 ms of CPU), which a real bank never does: left cold, a flood over
    400 accounts spends its first seconds generating history, not delivering alerts."""
    for account in accounts:
        async with http.get(f"{bank}/sandbox/banks/northwind/raw/accounts/{account}") as resp:
            await resp.read()


async def link_users(cluster: Cluster, users: int, *, warm: bool = False) -> list[str]:
    """Link ``users`` subjects (demo1 … demoN at Northwind) and record their chats in the bots'
    database; returns each user's card account at the bank (with ``warm``, its history built:
    :func:`warm_bank`)."""
    from bot.store import repo
    from bot.store.db import make_engine, session_factory
    from bot.store.tables import ChatUser

    bank, broker = cluster.bank_url, cluster.broker_url
    auth = {
        "Authorization": f"Bearer {cluster.client['credential']}",
        "X-Purpose": "chat-service",
    }
    engine = make_engine(cluster.config.bot_database_url)
    sessions = session_factory(engine)
    accounts: list[str] = []
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{bank}/sandbox/banks/northwind/customers") as resp:
                customers = {c["username"]: c for c in (await resp.json())["customers"]}
            for i, chat_id in enumerate(chat_ids(users)):
                async with http.post(f"{broker}/v1/subjects", headers=auth) as resp:
                    subject = (await resp.json())["subject_id"]
                username = f"demo{i + 1}"
                await link(http, broker, bank, auth, subject, ALERT_SCOPES, username)
                await repo.save_user(
                    sessions,
                    ChatUser(
                        telegram_user_id=chat_id, chat_id=chat_id, subject_id=subject, language="en"
                    ),
                )
                card = next(a for a in customers[username]["accounts"] if a["card_ids"])
                accounts.append(card["account_id"])
            if warm:
                await warm_bank(http, bank, accounts)
    finally:
        await engine.dispose()
    return accounts


@dataclass
class Flood:
    sent: dict[str, float] = field(default_factory=dict)  # key → perf_counter when booked
    booked: dict[str, float] = field(default_factory=dict)  # key → wall time when booked
    refused: int = 0
    seconds: float = 0.0


async def book_alerts(
    bank_url: str,
    accounts: list[str],
    total: int,
    rate: float,
    at: dict[int, Callable[[], Awaitable[None]]] | None = None,
    *,
    tick_s: float = 0.0,
) -> Flood:
    """Book ``total`` flagged payments at ``rate`` a second; ``at[k]`` runs before the k-th.

    With ``tick_s``, every ``tick_s`` the payments whose time has come go in one request to the
    bank's batch call (:func:`book_batches`), so the load generator's own HTTP work does not cap
    the rate; each payment's clock starts when its batch is sent."""
    if tick_s > 0:
        return await book_batches(bank_url, accounts, total, rate, at or {}, tick_s)
    flood = Flood()
    at = at or {}

    async def book(http: aiohttp.ClientSession, k: int) -> None:
        key = f"{k:06d}"
        body = {
            "account_id": accounts[k % len(accounts)],
            "amount": "2750.00",
            "currency": "EUR",
            "merchant_name": f"{MERCHANT}{key}",
            "country": "FR",
        }
        flood.sent[key] = time.perf_counter()
        flood.booked[key] = time.time()
        async with http.post(f"{bank_url}/sandbox/banks/northwind/transactions", json=body) as r:
            answer = await r.json()
            if r.status >= 400 or not answer.get("alerts"):
                flood.refused += 1
                flood.sent.pop(key, None)

    started = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        tasks = []
        for k in range(total):
            if k in at:
                await at[k]()
            delay = started + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(book(http, k)))
        await asyncio.gather(*tasks)
    flood.seconds = time.perf_counter() - started
    return flood


def _body(accounts: list[str], k: int) -> dict[str, str]:
    return {
        "account_id": accounts[k % len(accounts)],
        "amount": "2750.00",
        "currency": "EUR",
        "merchant_name": f"{MERCHANT}{k:06d}",
        "country": "FR",
    }


async def book_batches(
    bank_url: str,
    accounts: list[str],
    total: int,
    rate: float,
    at: dict[int, Callable[[], Awaitable[None]]],
    tick_s: float,
) -> Flood:
    """:func:`book_alerts` through ``POST /sandbox/banks/northwind/transactions/batch``."""
    flood = Flood()

    async def book(http: aiohttp.ClientSession, ks: list[int]) -> None:
        sent, booked = time.perf_counter(), time.time()
        for k in ks:
            flood.sent[f"{k:06d}"], flood.booked[f"{k:06d}"] = sent, booked
        body = {"transactions": [_body(accounts, k) for k in ks]}
        url = f"{bank_url}/sandbox/banks/northwind/transactions/batch"
        async with http.post(url, json=body) as r:
            answer = await r.json()
        results = answer.get("results", []) if r.status < 400 else []
        for i, k in enumerate(ks):
            if i >= len(results) or not results[i].get("alerts"):
                flood.refused += 1
                flood.sent.pop(f"{k:06d}", None)
                flood.booked.pop(f"{k:06d}", None)

    started = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        tasks = []
        k = 0
        while k < total:
            due = min(total, int((time.perf_counter() - started) * rate) + 1)
            if due > k:
                for hook in (at[j] for j in range(k, due) if j in at):
                    await hook()
                tasks.append(asyncio.create_task(book(http, list(range(k, due)))))
                k = due
            await asyncio.sleep(tick_s)
        await asyncio.gather(*tasks)
    flood.seconds = time.perf_counter() - started
    return flood


async def shown(chat_url: str, users: int) -> Counter[str]:
    """How many times each alert key was shown, over every chat (from localchat's test API)."""
    counts: Counter[str] = Counter()
    async with aiohttp.ClientSession() as http:
        for chat_id in chat_ids(users):
            async with http.get(f"{chat_url}/api/messages/{chat_id}") as resp:
                for message in await resp.json():
                    if message["from_bot"]:
                        counts.update(KEY.findall(message["text"]))
    return counts
