"""What authentication costs per request, against the real running gateway and auth.

Starts the platform as `make run` does (its own ports and data folder), signs a user in, then
sends the same number of requests at the same concurrency to an authenticated
`GET /api/v1/me` and to the unauthenticated `/healthz`, interleaved in rounds so that drift
on a shared machine hits both alike. `overhead_ratio` is p50(me) / p50(healthz); goal <= 1.5.

    .venv/bin/python -m bench.auth_overhead [--requests 2000] [--concurrency 32]

The last line printed is one JSON object. Its `uncached` part repeats the measurement with
the gateway's token cache off (AUTH_CACHE_TTL_SECONDS=0), so every request costs a gRPC
round trip to auth: the price of the cache being cold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.servers.platform import platform_env, run_platform


async def _measure(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], n: int, concurrency: int
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        nonlocal errors
        while not queue.empty():
            queue.get_nowait()
            start = time.perf_counter()
            try:
                response = await client.get(path, headers=headers)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - start) * 1000)
            errors += 0 if ok else 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(
    url: str, token: str, requests: int, concurrency: int, rounds: int
) -> dict[str, object]:
    auth = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        for path, headers in (("/healthz", {}), ("/api/v1/me", auth)):  # warm-up
            await _measure(client, path, headers, 200, concurrency)
        samples: dict[str, list[float]] = {"healthz": [], "me": []}
        errors = 0
        per_round = requests // rounds
        for _ in range(rounds):
            for name, path, headers in (("healthz", "/healthz", {}), ("me", "/api/v1/me", auth)):
                latencies, failed = await _measure(client, path, headers, per_round, concurrency)
                samples[name] += latencies
                errors += failed
    summary = {
        name: {
            "p50_ms": round(statistics.median(values), 2),
            "p99_ms": round(_percentile(values, 0.99), 2),
            "requests": len(values),
        }
        for name, values in samples.items()
    }
    me, healthz = summary["me"], summary["healthz"]
    return {
        "benchmark": "auth_overhead",
        "requests_per_endpoint": requests,
        "concurrency": concurrency,
        "p50_ms": me["p50_ms"],
        "p99_ms": me["p99_ms"],
        "baseline_p50_ms": healthz["p50_ms"],
        "baseline_p99_ms": healthz["p99_ms"],
        "overhead_ratio": round(me["p50_ms"] / healthz["p50_ms"], 3),
        "errors": errors,
    }


def _bench_platform(args: argparse.Namespace, **env: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="forgeline-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        with run_platform(data_dir, platform_env(data_dir, **env)) as platform:
            email, password = "bench@example.com", "timing every request twice"
            httpx.post(
                f"{platform.url}/api/v1/auth/register", json={"email": email, "password": password}
            ).raise_for_status()
            pair = httpx.post(
                f"{platform.url}/api/v1/auth/login", json={"email": email, "password": password}
            ).json()
            token = pair["access_token"]
            return asyncio.run(
                _run(platform.url, token, args.requests, args.concurrency, args.rounds)
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    # As shipped: the gateway's token cache answers repeat validations.
    result = _bench_platform(args)
    # For reference: every request validated by the auth service over gRPC.
    uncached = _bench_platform(args, AUTH_CACHE_TTL_SECONDS="0")
    keys = ("p50_ms", "p99_ms", "baseline_p50_ms", "overhead_ratio", "errors")
    result["uncached"] = {key: uncached[key] for key in keys}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
