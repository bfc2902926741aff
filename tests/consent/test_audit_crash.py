"""A broker process killed outright (SIGKILL: no shutdown, no flush) right after it answered
reads has every one of them in the access log: a read is answered only once its entry is
committed (group commit, synced to disk), never from a queue that a crash would lose."""

from __future__ import annotations

import asyncio
import base64
import multiprocessing as mp
import os
import secrets
import signal
import sqlite3
from pathlib import Path

import aiohttp

from bench.bank_transactions import _free_port, _wait_up
from bench.broker_balances import FAST
from bench.services import ADMIN, link, serve_bank, serve_broker
from consent.domain.audit import verify_chain
from consent.store.audit import entry_of


async def test_every_answered_read_survives_a_kill_of_the_broker(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    ring = f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    bank_port, broker_port = _free_port(), _free_port()
    bank_url, broker_url = f"http://127.0.0.1:{bank_port}", f"http://127.0.0.1:{broker_port}"
    db_path = tmp_path / "consent.db"
    bank = ctx.Process(target=serve_bank, args=(bank_port, 3), daemon=True)
    bank.start()
    broker = ctx.Process(
        target=serve_broker,
        args=(broker_port, bank_port, f"sqlite+aiosqlite:///{db_path}", ring, FAST),
        daemon=True,
    )
    try:
        await _wait_up(f"{bank_url}/banks")
        broker.start()
        await _wait_up(f"{broker_url}/openapi.json")
        answered: dict[str, int] = {}
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{broker_url}/admin/v1/platform-clients",
                json={"name": "crash"},
                headers={"Authorization": f"Bearer {ADMIN}"},
            ) as resp:
                credential = (await resp.json())["credential"]
            headers = {"Authorization": f"Bearer {credential}", "X-Purpose": "chat-service"}
            subjects = []
            for _ in range(4):
                async with http.post(f"{broker_url}/v1/subjects", headers=headers) as resp:
                    subjects.append((await resp.json())["subject_id"])
                await link(http, broker_url, bank_url, headers, subjects[-1], ["balances"])

            async def reader(subject: str) -> None:
                for _ in range(12):
                    url = f"{broker_url}/v1/subjects/{subject}/balances"
                    async with http.get(url, headers=headers) as resp:
                        assert resp.status == 200, await resp.text()
                        assert (await resp.json())["balances"]
                    answered[subject] = answered.get(subject, 0) + 1

            # 16 readers at once, so that entries are committed in batches
            await asyncio.gather(*(reader(s) for s in subjects for _ in range(4)))
            assert broker.pid is not None
            os.kill(broker.pid, signal.SIGKILL)  # at once: nothing is flushed on the way out
        broker.join(10)
        conn = sqlite3.connect(db_path)
        try:
            for subject in subjects:
                rows = conn.execute(
                    "SELECT subject_id, seq, client_id, action, scope, purpose, fields, outcome,"
                    " reason, at, prev_hash, entry_hash FROM audit_entry WHERE subject_id = ?"
                    " ORDER BY seq",
                    (subject,),
                ).fetchall()
                entries = [entry_of(r) for r in rows]
                reads = [e for e in entries if e.action == "read.balances"]
                assert len(reads) == answered[subject] == 48
                assert all(e.outcome == "allowed" for e in reads)
                assert verify_chain(entries).ok
        finally:
            conn.close()
    finally:
        for proc in (broker, bank):
            if proc.is_alive():
                proc.kill()
            if proc.pid is not None:
                proc.join(10)
