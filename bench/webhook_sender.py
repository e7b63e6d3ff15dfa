"""The load generator of the webhook benchmark, run as its own process (`python -m bench.webhook_sender`).

Open loop: request i is sent at start + i / rate whatever the earlier answers took, so a slow server
shows up as latency instead of silently lowering the rate. Every 20th event is sent a second time (a
provider redelivery) to prove that duplicates bill nothing. Prints one JSON object: per request the
latency in ms and the status.

The client is aiohttp, not the httpx the project uses elsewhere: the sender shares the 2 cores with what
it measures, and httpx's pure-Python HTTP stack took 28 % of a core at 100 requests a second (about 2.8
CPU ms a request, inside each measured latency and taken from the API meanwhile); aiohttp's C parser
takes 8 %. A provider's sender runs on its own machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

from standins import webhooks as send_as


async def run(url: str, secret: str, plan: list[dict[str, str]], rate: float) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    connector = aiohttp.TCPConnector(limit=200)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as client:
        start = time.perf_counter() + 0.2

        async def one(i: int, item: dict[str, str]) -> None:
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            delivery = send_as.generic_event(
                item["event_id"],
                "milestone.completed",
                secret,
                project_id=item["project_id"],
                milestone_key=item["milestone_key"],
            )
            headers = {"Content-Type": "application/json", **delivery.headers}
            began = time.perf_counter()
            try:
                async with client.post(delivery.path, data=delivery.body, headers=headers) as response:
                    await response.read()
                    status: int | str = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = f"error: {type(exc).__name__}"
            results.append(
                {
                    "i": i,
                    "event_id": item["event_id"],
                    "ms": (time.perf_counter() - began) * 1000,
                    "status": status,
                }
            )

        await asyncio.gather(*(one(i, item) for i, item in enumerate(plan)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--plan", type=Path, required=True)
    parser.add_argument("--rate", type=float, required=True)
    args = parser.parse_args()
    plan = json.loads(args.plan.read_text())
    json.dump(asyncio.run(run(args.url, args.secret, plan, args.rate)), sys.stdout)


if __name__ == "__main__":
    main()
