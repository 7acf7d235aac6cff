"""What the gateway costs a streamed generation: one vLLM server called through the gateway's
OpenAI-compatible `/v1` and directly, with the same prompts, streamed, at concurrency 1 and 16.

Starts the platform (its own ports, a temporary data folder), signs a user in with an API
key, and deploys the bundled SmolLM2 (`POST /api/v1/deployments`), which the deployer serves
with vLLM on this machine's CPU. The server's own address comes from the deployer, over the
gRPC call the gateway makes too (`ResolveModel`: `upstream_url`, `served_name`); the REST API
does not show it. Two `openai.AsyncOpenAI` clients, one at `<gateway>/v1` with the API key,
one at the server's `/v1`, then send the same chat prompts (`temperature` 0, `max_tokens`
64, `stream: true`).

Warm-up: every prompt once through each endpoint with `max_tokens` 1 (vLLM's prefix cache
then holds each prompt for both alike), and a few full requests through each.

Blocks: per concurrency, the prompts go out in blocks (8 prompts at concurrency 1, 16 at
concurrency 16), each block once through each endpoint back to back, the one going first
alternating (gateway-direct, direct-gateway, ...), so that slow drift of a shared machine
hits both alike. `--rounds` passes over the prompts per concurrency. At concurrency c at
most c requests are in flight (a semaphore): a block of 16 at 16 sends all at once.

Per request:
- TTFT: from the call to the first chunk with content (vLLM's first chunk, the role, has
  none);
- headers: from the call until the response headers came (the client's `create` returned):
  for the gateway that holds authentication, the model lookup and connecting upstream;
- tokens/s: content chunks after the first / seconds from the first to the last.
Failed requests (an exception, or no content) count as `errors`. Before the blocks, a few
small requests, interleaved, split the gateway's fixed cost (`probes`): its `/healthz` (its
HTTP stack alone), `GET /v1/models/{name}` (that, plus authentication and one `ResolveModel`
call to the deployer) and vLLM's own `GET /v1/models`. The CPU seconds the
gateway's process, the vLLM server's processes and this client used per block are recorded:
on a small machine, work the gateway does is work vLLM waits for.

    .venv/bin/python -m bench.gateway_overhead [--prompts 32] [--max-tokens 64] [--rounds 2]

The last line is one JSON object: `ttft_ratio` (gateway / direct, p50 TTFT at concurrency 1,
goal at most 1.05), `tokens_per_s_ratio` (p50, concurrency 1, goal at least 0.95),
`added_ms_p50` (gateway p50 TTFT - direct p50 TTFT, concurrency 1), `errors`, the same at
concurrency 16 (`ttft_ratio_c16`, ...), and a section per concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import psutil
from forgeline.v1 import deployer_pb2, deployer_pb2_grpc

from bench.finetune_smollm2 import MODELS_DIR
from bench.rag_financebench import Api, log, percentile, platform
from bench.training_overhead import CpuMeter, wait_quiet
from services.common.bundled_model import ensure_hf_model
from services.common.grpc_client import sync_channel

BUNDLED = "smollm2-135m-instruct"
DEPLOYMENT_NAME = "bench-gateway"
GOAL_TTFT_RATIO = 1.05  # at most
GOAL_TOKENS_PER_S_RATIO = 0.95  # at least
CONCURRENCIES = (1, 16)
PROBE_ROUNDS = 40  # of the small requests that split the gateway's fixed cost
READY_TIMEOUT = 900  # seconds; vLLM starts in a minute or two here
MARKER = "FORGELINE_DEPLOYMENT_ID"  # in the environment of a deployment's vLLM server
GATEWAY, DIRECT = "gateway", "direct"

PROMPTS = [
    "What is the capital of France?",
    "Explain what a rainbow is in two sentences.",
    "Give me three tips for writing clean Python code.",
    "Why is the sky blue?",
    "Write a haiku about autumn leaves.",
    "What does a compiler do?",
    "Summarise the plot of Romeo and Juliet.",
    "How do plants make their food?",
    "List four animals that live in the ocean.",
    "What is the difference between weather and climate?",
    "Describe a cat to someone who has never seen one.",
    "How many days are there in a leap year, and why?",
    "What is photosynthesis?",
    "Suggest a name for a small coffee shop.",
    "Explain gravity to a child.",
    "What are the primary colours?",
    "Write one sentence about the moon.",
    "Why do we need sleep?",
    "What is a prime number? Give two examples.",
    "How does a bicycle stay upright?",
    "Tell me a short fact about honeybees.",
    "What is the boiling point of water at sea level?",
    "Give a simple recipe for a cheese sandwich.",
    "What is the largest planet in our solar system?",
    "Explain what an API is in plain words.",
    "Why do leaves change colour in autumn?",
    "What is the purpose of a database index?",
    "Describe the sound of rain.",
    "How do you say hello in Spanish and in German?",
    "What causes the seasons on Earth?",
    "Name three famous painters and one work of each.",
    "What is machine learning, in one paragraph?",
]


# --- the deployment ---------------------------------------------------------------------------


def deploy(api: Api) -> tuple[dict[str, Any], float]:
    """Deploy the bundled model; the deployment once ready, and the seconds it took."""
    started = time.perf_counter()
    reply = api.http.post(
        "/api/v1/deployments",
        json={"base_model": BUNDLED, "name": DEPLOYMENT_NAME},
        headers=api.headers,
    )
    if reply.status_code != 201:
        raise SystemExit(f"creating the deployment: {reply.status_code} {reply.text[:500]}")
    deployment: dict[str, Any] = reply.json()
    state = deployment["state"]
    log(f"deployment {deployment['id']}: {state}")
    deadline = time.monotonic() + READY_TIMEOUT
    while deployment["state"] not in ("ready", "failed") and time.monotonic() < deadline:
        time.sleep(2)
        deployment = api.http.get(
            f"/api/v1/deployments/{deployment['id']}", headers=api.headers
        ).json()
        if deployment["state"] != state:
            state = deployment["state"]
            log(f"deployment: {state} ({deployment['status_message']})")
    if deployment["state"] != "ready":
        logs = api.http.get(
            f"/api/v1/deployments/{deployment['id']}/logs",
            params={"tail": 40},
            headers=api.headers,
        ).json()
        raise SystemExit(
            f"the deployment is {deployment['state']}: {deployment.get('failure_reason')}\n"
            + "\n".join(logs.get("lines", []))
        )
    return deployment, time.perf_counter() - started


def resolve_upstream(running: Any, owner_id: str, model: str) -> tuple[str, str]:
    """(upstream URL ending in /v1, served model name), as the deployer tells the gateway
    (with the installation's service token, which `make run` keeps in the data folder)."""
    token = (running.data_dir / "service.token").read_text().strip()
    address = f"127.0.0.1:{running.env['DEPLOYER_GRPC_PORT']}"
    channel = sync_channel(address, token=token)
    try:
        stub = deployer_pb2_grpc.DeployerServiceStub(channel)
        reply = stub.ResolveModel(
            deployer_pb2.ResolveModelRequest(owner_id=owner_id, model=model), timeout=10
        )
    finally:
        channel.close()
    if not reply.upstream_url:
        raise SystemExit(f"the deployer gives no upstream for {model} ({reply.deployment.state})")
    return reply.upstream_url, reply.served_name


def stop_deployment(api: Api, deployment_id: str) -> None:
    """Stop the server before the platform goes (the supervisor would stop it too)."""
    with contextlib.suppress(httpx.HTTPError):
        api.http.post(f"/api/v1/deployments/{deployment_id}/stop", headers=api.headers)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen = api.http.get(f"/api/v1/deployments/{deployment_id}", headers=api.headers)
            if seen.json().get("state") in ("stopped", "failed"):
                return
            time.sleep(1)


# --- the processes whose CPU time is counted --------------------------------------------------


def gateway_process(supervisor_pid: int) -> psutil.Process | None:
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(supervisor_pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "services.gateway" in child.cmdline():
                    return child
    return None


def vllm_processes(deployment_id: str) -> list[psutil.Process]:
    """The deployment's vLLM API server (found by the marker in its environment) and the
    engine processes it started."""
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get(MARKER) == deployment_id and "api_server" in " ".join(
                process.cmdline()
            ):
                return [process, *process.children(recursive=True)]
    return []


class CpuClock:
    """CPU seconds of the gateway, of the vLLM server's processes and of this client; and
    `meter`, for the other work on the machine (outside the platform and this process)."""

    def __init__(
        self, meter: CpuMeter, gateway: psutil.Process | None, vllm: list[psutil.Process]
    ) -> None:
        self.meter = meter
        self.groups = {
            "gateway": [gateway] if gateway else [],
            "vllm": vllm,
            "client": [psutil.Process(os.getpid())],
        }

    def read(self) -> dict[str, float]:
        seconds = {}
        for name, processes in self.groups.items():
            total = 0.0
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    t = process.cpu_times()
                    total += t.user + t.system
            seconds[name] = total
        return seconds


# --- one request, one block -------------------------------------------------------------------


@dataclass
class Sample:
    prompt: int
    ttft_ms: float
    headers_ms: float
    tokens_per_s: float | None  # None with fewer than two content chunks
    chunks: int
    text: str


@dataclass
class Endpoint:
    name: str
    client: openai.AsyncOpenAI
    model: str
    samples: dict[int, list[Sample]] = field(default_factory=dict)  # by concurrency
    errors: dict[int, list[str]] = field(default_factory=dict)
    cpu: dict[int, dict[str, float]] = field(default_factory=dict)  # CPU seconds by group


async def one_request(endpoint: Endpoint, index: int, max_tokens: int) -> Sample:
    started = time.perf_counter()
    stream = await endpoint.client.chat.completions.create(
        model=endpoint.model,
        messages=[{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
    )
    headers = time.perf_counter()
    first = last = 0.0
    chunks = 0
    pieces = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            now = time.perf_counter()
            if not chunks:
                first = now
            last = now
            chunks += 1
            pieces.append(chunk.choices[0].delta.content)
    if not chunks:
        raise RuntimeError("the stream ended without content")
    return Sample(
        prompt=index,
        ttft_ms=(first - started) * 1000,
        headers_ms=(headers - started) * 1000,
        tokens_per_s=(chunks - 1) / (last - first) if chunks > 1 and last > first else None,
        chunks=chunks,
        text="".join(pieces),
    )


async def run_block(
    endpoint: Endpoint, prompts: list[int], concurrency: int, max_tokens: int
) -> tuple[list[Sample], list[str]]:
    """The prompts through one endpoint, `concurrency` requests in flight at once."""
    gate = asyncio.Semaphore(concurrency)

    async def guarded(index: int) -> Sample | str:
        async with gate:
            try:
                return await one_request(endpoint, index, max_tokens)
            except Exception as error:  # any failure counts as an error
                return f"{type(error).__name__}: {str(error)[:200]}"

    outcomes = await asyncio.gather(*(guarded(i) for i in prompts))
    return [o for o in outcomes if isinstance(o, Sample)], [
        o for o in outcomes if isinstance(o, str)
    ]


async def warm_up(endpoints: list[Endpoint], prompt_count: int, max_tokens: int) -> None:
    """Every prompt once, one token long (prefill only), then a few full requests, alone and
    16 at once. Failures are logged; only an endpoint that answers nothing stops the run."""
    for endpoint in endpoints:
        answered, failures = 0, list[str]()
        for prompts, concurrency, tokens in (
            (list(range(prompt_count)), 4, 1),
            (list(range(4)), 1, max_tokens),
            (list(range(16)), 16, max_tokens),
        ):
            samples, errors = await run_block(endpoint, prompts, concurrency, tokens)
            answered, failures = answered + len(samples), failures + errors
        if not answered:
            raise SystemExit(f"warm-up through {endpoint.name} failed: {failures[0]}")
        log(f"warmed up: {endpoint.name} ({len(failures)} failed: {failures[:1]})")


async def measure(
    endpoints: list[Endpoint], clock: CpuClock, args: argparse.Namespace, concurrency: int
) -> None:
    block_size = min(args.prompts, max(8, concurrency))
    blocks = [
        list(range(start, min(start + block_size, args.prompts)))
        for _ in range(args.rounds)
        for start in range(0, args.prompts, block_size)
    ]
    for endpoint in endpoints:
        endpoint.samples[concurrency], endpoint.errors[concurrency] = [], []
        endpoint.cpu[concurrency] = {"gateway": 0.0, "vllm": 0.0, "client": 0.0, "wall": 0.0}
    for number, prompts in enumerate(blocks):
        order = endpoints if number % 2 == 0 else endpoints[::-1]
        for endpoint in order:
            before, started = clock.read(), time.perf_counter()
            samples, errors = await run_block(endpoint, prompts, concurrency, args.max_tokens)
            after, wall = clock.read(), time.perf_counter() - started
            endpoint.samples[concurrency] += samples
            endpoint.errors[concurrency] += errors
            for name in after:
                endpoint.cpu[concurrency][name] += after[name] - before[name]
            endpoint.cpu[concurrency]["wall"] += wall
        log(
            f"concurrency {concurrency}: block {number + 1}/{len(blocks)} "
            + " ".join(
                f"{e.name} ttft p50 {_p50([s.ttft_ms for s in e.samples[concurrency]]):.0f}ms"
                for e in endpoints
            )
        )


async def probe(base: str, key: str, upstream: str, model: str, rounds: int) -> dict[str, float]:
    """Small requests that split the gateway's fixed cost per request, interleaved; p50 ms.

    - gateway_healthz: the gateway's HTTP stack alone (no authentication, no lookup);
    - gateway_model_lookup: `GET /v1/models/{name}`: that, plus authentication (the token
      cache) and one `ResolveModel` call to the deployer (this route does not cache it);
    - direct_models: vLLM's own `GET /v1/models`.
    """
    targets = {
        "gateway_healthz": (f"{base}/healthz", {}),
        "gateway_model_lookup": (
            f"{base}/v1/models/{model}",
            {"Authorization": f"Bearer {key}"},
        ),
        "direct_models": (f"{upstream}/models", {}),
    }
    times: dict[str, list[float]] = {name: [] for name in targets}
    failed = 0
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        for number in range(rounds + 3):  # the first three warm the connections
            for name, (url, headers) in targets.items():
                started = time.perf_counter()
                try:
                    ok = (await client.get(url, headers=headers)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = (time.perf_counter() - started) * 1000
                failed += not ok
                if ok and number >= 3:
                    times[name].append(elapsed)
    if failed:
        log(f"probes: {failed} failed")
    return {f"{name}_ms_p50": round(statistics.median(v), 2) for name, v in times.items() if v}


# --- the summary ------------------------------------------------------------------------------


def _p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None or value != value else round(value, digits)  # NaN: None


def _ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or not bottom or top != top or bottom != bottom:
        return None
    return round(top / bottom, 4)


def describe(endpoint: Endpoint, concurrency: int) -> dict[str, Any]:
    samples = endpoint.samples[concurrency]
    ttft = [s.ttft_ms for s in samples]
    rates = [s.tokens_per_s for s in samples if s.tokens_per_s is not None]
    cpu = endpoint.cpu[concurrency]
    done = max(1, len(samples))
    return {
        "requests": len(samples) + len(endpoint.errors[concurrency]),
        "errors": len(endpoint.errors[concurrency]),
        "ttft_ms_p50": _round(_p50(ttft)),
        "ttft_ms_p95": _round(percentile(ttft, 0.95)) if ttft else None,
        "headers_ms_p50": _round(_p50([s.headers_ms for s in samples])),
        "first_token_after_headers_ms_p50": _round(
            _p50([s.ttft_ms - s.headers_ms for s in samples])
        ),
        "tokens_per_s_p50": _round(_p50(rates)),
        "chunks_mean": _round(statistics.mean(s.chunks for s in samples)) if samples else None,
        # CPU milliseconds per request while this endpoint's blocks ran.
        "cpu_ms_per_request": {
            name: round(cpu[name] * 1000 / done, 1) for name in ("gateway", "vllm", "client")
        },
        # Requests finished per second of its blocks' wall time.
        "requests_per_s": round(len(samples) / cpu["wall"], 3) if cpu["wall"] else None,
    }


def paired_ttft_ratio(gateway: Endpoint, direct: Endpoint, concurrency: int) -> float | None:
    """Median over prompts of (gateway TTFT / direct TTFT), each prompt's samples in order."""
    ratios = []
    for index in range(len(PROMPTS)):
        ours = [s.ttft_ms for s in gateway.samples[concurrency] if s.prompt == index]
        theirs = [s.ttft_ms for s in direct.samples[concurrency] if s.prompt == index]
        ratios += [a / b for a, b in zip(ours, theirs, strict=False) if b > 0]
    return round(statistics.median(ratios), 4) if ratios else None


def same_text_share(gateway: Endpoint, direct: Endpoint, concurrency: int) -> float | None:
    """Share of prompts whose first answers through both endpoints are the same text."""
    ours = {s.prompt: s.text for s in reversed(gateway.samples[concurrency])}
    theirs = {s.prompt: s.text for s in reversed(direct.samples[concurrency])}
    common = ours.keys() & theirs.keys()
    return round(sum(ours[p] == theirs[p] for p in common) / len(common), 3) if common else None


def compare(gateway: Endpoint, direct: Endpoint, concurrency: int) -> dict[str, Any]:
    ours, theirs = describe(gateway, concurrency), describe(direct, concurrency)
    ttft_ratio = _ratio(ours["ttft_ms_p50"], theirs["ttft_ms_p50"])
    rate_ratio = _ratio(ours["tokens_per_s_p50"], theirs["tokens_per_s_p50"])
    added = (
        round(ours["ttft_ms_p50"] - theirs["ttft_ms_p50"], 2)
        if ours["ttft_ms_p50"] is not None and theirs["ttft_ms_p50"] is not None
        else None
    )
    return {
        "ttft_ratio": ttft_ratio,
        "ttft_p95_ratio": _ratio(ours["ttft_ms_p95"], theirs["ttft_ms_p95"]),
        "tokens_per_s_ratio": rate_ratio,
        "added_ms_p50": added,
        "headers_added_ms_p50": (
            round(ours["headers_ms_p50"] - theirs["headers_ms_p50"], 2)
            if ours["headers_ms_p50"] is not None and theirs["headers_ms_p50"] is not None
            else None
        ),
        "paired_ttft_ratio_p50": paired_ttft_ratio(gateway, direct, concurrency),
        "same_text_share": same_text_share(gateway, direct, concurrency),
        "errors": ours["errors"] + theirs["errors"],
        "met": {
            "ttft_ratio": ttft_ratio is not None and ttft_ratio <= GOAL_TTFT_RATIO,
            "tokens_per_s_ratio": rate_ratio is not None and rate_ratio >= GOAL_TOKENS_PER_S_RATIO,
        },
        GATEWAY: ours,
        DIRECT: theirs,
    }


# --- the benchmark ----------------------------------------------------------------------------


async def bench(
    api: Api, upstream: str, served_name: str, clock: CpuClock, args: argparse.Namespace
) -> tuple[tuple[Endpoint, Endpoint], dict[int, float | None], dict[str, float]]:
    key = api.headers["Authorization"].removeprefix("Bearer ")
    timeout = 300.0  # the openai client brings its own HTTP library (httpx2)
    base = str(api.http.base_url).rstrip("/")
    gateway = Endpoint(
        GATEWAY,
        openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=timeout),
        DEPLOYMENT_NAME,
    )
    direct = Endpoint(
        DIRECT,
        # vLLM was started without --api-key: any key passes.
        openai.AsyncOpenAI(base_url=upstream, api_key="unused", max_retries=0, timeout=timeout),
        served_name,
    )
    endpoints = [gateway, direct]
    others: dict[int, float | None] = {}
    probes: dict[str, float] = {}
    try:
        await warm_up(endpoints, args.prompts, args.max_tokens)
        probes = await probe(base, key, upstream, DEPLOYMENT_NAME, PROBE_ROUNDS)
        log(f"probes: {probes}")
        for concurrency in args.concurrency:
            wait_quiet(clock.meter, args.quiet_wait)
            clock.meter.lap()
            await measure(endpoints, clock, args, concurrency)
            lap = clock.meter.lap()
            others[concurrency] = round(lap[0] / lap[1], 2) if lap and lap[1] else None
    finally:
        for endpoint in endpoints:
            await endpoint.client.close()
    return (gateway, direct), others, probes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32, help=f"at most {len(PROMPTS)}")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="passes over the prompts")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=list(CONCURRENCIES), help="levels"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120,
        help="seconds to wait, before each concurrency, for other work to leave the CPUs",
    )
    parser.add_argument("--keep-data", default=None)
    args = parser.parse_args()
    if not 1 <= args.prompts <= len(PROMPTS):
        parser.error(f"--prompts must be 1 to {len(PROMPTS)}")

    models = ensure_hf_model(MODELS_DIR)  # converted once, shared with the tests
    with platform(args.keep_data, TRAINER_MODELS_DIR=str(models.parent)) as running:
        api = Api(running.url)
        deployment, ready_s = deploy(api)
        log(f"deployment ready in {ready_s:.0f}s")
        try:
            upstream, served_name = resolve_upstream(running, api.user_id, DEPLOYMENT_NAME)
            log(f"upstream: {upstream} (model {served_name})")
            gateway_pid = gateway_process(running.process.pid)
            clock = CpuClock(
                CpuMeter(running.process.pid, os.getpid()),
                gateway_pid,
                vllm_processes(deployment["id"]),
            )
            if gateway_pid is None or not clock.groups["vllm"]:
                log("could not find the gateway's or vLLM's processes: their CPU is not counted")
            (gateway, direct), others, probes = asyncio.run(
                bench(api, upstream, served_name, clock, args)
            )
        finally:
            stop_deployment(api, deployment["id"])

    sections = {c: compare(gateway, direct, c) for c in args.concurrency}
    first = sections.get(1) or sections[args.concurrency[0]]
    result: dict[str, Any] = {
        "bench": "gateway_overhead",
        "ttft_ratio": first["ttft_ratio"],
        "goal_ttft_ratio": GOAL_TTFT_RATIO,
        "ttft_ratio_met": first["met"]["ttft_ratio"],
        "tokens_per_s_ratio": first["tokens_per_s_ratio"],
        "goal_tokens_per_s_ratio": GOAL_TOKENS_PER_S_RATIO,
        "tokens_per_s_ratio_met": first["met"]["tokens_per_s_ratio"],
        "met": first["met"]["ttft_ratio"] and first["met"]["tokens_per_s_ratio"],
        "added_ms_p50": first["added_ms_p50"],
        "errors": sum(s["errors"] for s in sections.values()),
    }
    for concurrency, section in sections.items():
        if section is first:
            continue
        suffix = f"_c{concurrency}"
        result |= {
            "ttft_ratio" + suffix: section["ttft_ratio"],
            "ttft_ratio_met" + suffix: section["met"]["ttft_ratio"],
            "tokens_per_s_ratio" + suffix: section["tokens_per_s_ratio"],
            "tokens_per_s_ratio_met" + suffix: section["met"]["tokens_per_s_ratio"],
            "added_ms_p50" + suffix: section["added_ms_p50"],
        }
    error_samples = [
        e for endpoint in (gateway, direct) for c in endpoint.errors.values() for e in c
    ]
    result |= {
        "concurrency": {str(c): section for c, section in sections.items()},
        "error_samples": error_samples[:5],
        # The gateway's fixed cost, split (see `probe`), p50 ms.
        "probes": probes,
        "prompts": args.prompts,
        "rounds": args.rounds,
        "max_tokens": args.max_tokens,
        "model": BUNDLED,
        "deployment_ready_s": round(ready_s, 1),
        # CPUs other work kept busy while each concurrency was measured.
        "other_cpus": {str(c): v for c, v in others.items()},
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
