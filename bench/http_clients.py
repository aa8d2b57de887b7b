"""CPU per token request of linkvault's two HTTP transports, aiohttp and httpx.

Run `python -m bench.http_clients`. It starts `bench.token_server` on
loopback and, in rounds that alternate which transport goes first, sends
`--requests` refresh forms through each with `--concurrency` in flight, the
way a worker does. Each round records the request rate and the CPU time of
this process per request (`time.process_time`, so waiting for the server is
not counted). The report gives the medians over `--rounds` rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.environment import describe
from bench.token_server import ServerProcess
from linkvault.adapters.oauth.transports import (
    FormTransport,
    HttpClientName,
    make_transport,
)

FORM = {"grant_type": "refresh_token", "refresh_token": "r" * 48}
HEADERS = {"Authorization": "Basic c2FuZGJveDpzZWNyZXQ="}
MAX_BODY_BYTES = 64 * 1024
WARMUP_REQUESTS = 200
CLIENTS: tuple[HttpClientName, ...] = ("aiohttp", "httpx")


async def measure(
    transport: FormTransport, url: str, requests: int, concurrency: int
) -> dict[str, float]:
    """Send `requests` forms, `concurrency` at a time; return CPU ms and rate."""
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            reply = await transport.post_form(url, FORM, HEADERS, MAX_BODY_BYTES)
            json.loads(reply.body)

    await asyncio.gather(*(one() for _ in range(WARMUP_REQUESTS)))
    cpu = time.process_time()
    wall = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    cpu_ms = (time.process_time() - cpu) * 1000 / requests
    rate = requests / (time.perf_counter() - wall)
    return {"cpu_ms_per_request": cpu_ms, "requests_per_second": rate}


async def run_rounds(
    url: str, rounds: int, requests: int, concurrency: int
) -> dict[str, list[dict[str, float]]]:
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in CLIENTS}
    for index in range(rounds):
        order = CLIENTS if index % 2 == 0 else tuple(reversed(CLIENTS))
        for name in order:
            transport = make_transport(name, timeout=10.0)
            try:
                sample = await measure(transport, url, requests, concurrency)
            finally:
                await transport.aclose()
            samples[name].append(sample)
            print(
                f"round {index + 1} {name}: {sample['cpu_ms_per_request']:.3f} ms "
                f"CPU per request, {sample['requests_per_second']:.0f}/s",
                flush=True,
            )
    return samples


def summarize(samples: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    medians = {
        name: {
            key: statistics.median(sample[key] for sample in runs)
            for key in ("cpu_ms_per_request", "requests_per_second")
        }
        for name, runs in samples.items()
    }
    ratio = (
        medians["httpx"]["cpu_ms_per_request"]
        / medians["aiohttp"]["cpu_ms_per_request"]
    )
    return {"medians": medians, "httpx_over_aiohttp_cpu": ratio}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.http_clients",
        description="Compare the CPU per token request of aiohttp and httpx.",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/http-clients.json")
    )
    args = parser.parse_args(argv)

    server = ServerProcess("--port", "0")
    try:
        server.wait_ready()
        samples = asyncio.run(
            run_rounds(server.url, args.rounds, args.requests, args.concurrency)
        )
    finally:
        server.stop()

    summary = summarize(samples)
    document = {
        "machine": describe(None),
        "options": vars(args) | {"out": str(args.out)},
        "samples": samples,
        **summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
