"""A small closed-loop HTTP load generator: N concurrent clients for a fixed time."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import aiohttp


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def line(self, name: str) -> str:
        figures = f"{self.rps:9.0f} req/s   p50 {self.p50_ms:7.2f} ms   p99 {self.p99_ms:7.2f} ms"
        return f"{name:<28} {figures}   ({self.requests} requests, {self.errors} errors)"


async def run_load(
    url: str | list[str], headers: dict[str, str], concurrency: int, seconds: float
) -> LoadResult:
    """Hit ``url`` from ``concurrency`` clients for ``seconds``; latencies of successful calls.
    With a list of URLs, client ``i`` uses ``urls[i % len(urls)]`` (e.g. one user per client)."""
    urls = [url] if isinstance(url, str) else url
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker(target: str) -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with session.get(target) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                        continue
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(worker(urls[i % len(urls)]) for i in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    if not latencies:
        return LoadResult(0, errors, elapsed, 0.0, 0.0)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return LoadResult(
        len(latencies), errors, elapsed, statistics.median(latencies) * 1000, p99 * 1000
    )
