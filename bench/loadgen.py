"""A small HTTP/1.1 keep-alive load generator (asyncio, raw sockets), so the client costs little CPU.

It sends GET requests over ``concurrency`` persistent connections and records each latency; the
same generator drives every server in a benchmark, so their figures compare fairly.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
        return ordered[index]

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p95(self) -> float:
        return self.percentile(95)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else float("nan")


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value.strip())
        elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _worker(
    host: str,
    port: int,
    paths: Callable[[random.Random], str],
    headers: dict[str, str],
    deadline: float,
    seed: int,
    latencies: list[float],
    errors: list[int],
) -> None:
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection(host, port)
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    try:
        while time.perf_counter() < deadline:
            request = f"GET {paths(rng)} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()
            started = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _run(
    host: str,
    port: int,
    paths: Callable[[random.Random], str],
    headers: dict[str, str],
    seconds: float,
    concurrency: int,
) -> LoadResult:
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(_worker(host, port, paths, headers, deadline, i, latencies, errors) for i in range(concurrency))
    )
    return LoadResult(len(latencies), time.perf_counter() - started, latencies, len(errors))


def run_load(
    host: str,
    port: int,
    paths: Callable[[random.Random], str],
    *,
    headers: dict[str, str] | None = None,
    seconds: float = 10.0,
    concurrency: int = 4,
    warmup_seconds: float = 2.0,
) -> LoadResult:
    """Warm up, then measure ``seconds`` of load; ``paths(rng)`` picks each request's path."""
    if warmup_seconds:
        asyncio.run(_run(host, port, paths, headers or {}, warmup_seconds, concurrency))
    return asyncio.run(_run(host, port, paths, headers or {}, seconds, concurrency))
