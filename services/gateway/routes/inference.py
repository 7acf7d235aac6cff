"""The OpenAI-compatible API at `/v1`: point any OpenAI client at `<PUBLIC_URL>/v1` with a
Forgeline API key (or access token) and name one of your deployments as `model`.

`/v1/models` lists your ready deployments; `/v1/chat/completions` and `/v1/completions` go
to the deployment's server, streamed (`"stream": true`, server-sent events) or not. Errors
use OpenAI's shape, `{"error": {"message", "type", "code"}}`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from forgeline.v1 import auth_pb2, deployer_pb2

from services.common.errors import InvalidInput, Unavailable
from services.common.logging import get_logger
from services.gateway import grounded_chat
from services.gateway.chat_extras import take_extras
from services.gateway.chat_history import question_recorder
from services.gateway.deps import CurrentPrincipal, DeployerDep
from services.gateway.inference import ModelCache, Upstream, UpstreamStream, UseRecorder
from services.gateway.rate_limits import enforce_rate_limit
from services.gateway.stream_tap import (
    Generation,
    Outcome,
    OutcomeHook,
    OutcomeListener,
    ask_for_usage,
    read_whole,
)

router = APIRouter(prefix="/v1", tags=["openai-compatible"])
# Headers of the upstream's answer not to copy: the body is re-framed by our server.
log = get_logger(__name__)
_pending: set[asyncio.Task[None]] = set()  # touches in flight, kept from the collector
_HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "content-encoding"}


@router.get("/models")
async def list_models(principal: CurrentPrincipal, deployer: DeployerDep) -> dict[str, Any]:
    """Your ready deployments, as OpenAI models; `id` is what you pass as `model`. A server
    of LoRA adapters lists each adapter under its own name."""
    reply = await deployer.call(
        "ListDeployments", deployer_pb2.ListDeploymentsRequest(owner_id=principal.user.id)
    )
    return {
        "object": "list",
        "data": [
            _model(d, name)
            for d in reply.deployments
            if d.state == "ready"
            for name in ([a.name for a in d.adapters] or [d.name])
        ],
    }


@router.get("/models/{model:path}")
async def get_model(
    model: str, principal: CurrentPrincipal, deployer: DeployerDep
) -> dict[str, Any]:
    reply = await deployer.call(
        "ResolveModel", deployer_pb2.ResolveModelRequest(owner_id=principal.user.id, model=model)
    )
    # The served name is the adapter's when `model` names one of a deployment's adapters.
    return _model(reply.deployment, reply.served_name or reply.deployment.name)


def _model(d: deployer_pb2.Deployment, name: str) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": d.created_at.seconds,
        "owned_by": "you",
    }


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    request: Request, principal: CurrentPrincipal, deployer: DeployerDep
) -> Response:
    """OpenAI chat completions, passed to your deployment's vLLM server."""
    return await _forward(request, principal, deployer, "chat/completions")


@router.post("/completions", response_model=None)
async def completions(
    request: Request, principal: CurrentPrincipal, deployer: DeployerDep
) -> Response:
    """OpenAI (legacy) text completions, passed to your deployment's vLLM server."""
    return await _forward(request, principal, deployer, "completions")


async def _read_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise InvalidInput("invalid_request", "The body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidInput("invalid_request", "Name the model to use in 'model'.")
    return body


def not_ready(model: str, state: str) -> Unavailable:
    return Unavailable(
        "deployment_not_ready",
        f"The deployment {model!r} is {state}, not ready; try again once it is ready.",
    )


async def _resolve(owner_id: str, model: str, deployer: DeployerDep, cache: ModelCache) -> Upstream:
    async def lookup() -> Upstream:
        reply = await deployer.call(
            "ResolveModel", deployer_pb2.ResolveModelRequest(owner_id=owner_id, model=model)
        )
        if reply.deployment.state != "ready" or not reply.upstream_url:
            raise not_ready(model, reply.deployment.state)
        return Upstream(reply.deployment.id, reply.upstream_url, reply.served_name, reply.api_key)

    return await cache.resolve(owner_id, model, lookup)


async def _forward(
    request: Request, principal: auth_pb2.Principal, deployer: DeployerDep, path: str
) -> Response:
    owner_id = principal.user.id
    await enforce_rate_limit(request, principal)  # 429 rate_limit_exceeded; counts the call
    body = await _read_body(request)
    sent = dict(body)  # as the caller sent it, Forgeline's own fields included
    extras = take_extras(body, path)  # those fields out; a template applied
    model = body["model"]
    cache: ModelCache = request.app.state.model_cache
    client: httpx.AsyncClient = request.app.state.inference_http
    upstream = await _resolve(owner_id, model, deployer, cache)
    _record_use(request, owner_id, upstream.deployment_id, deployer)
    generation = Generation(
        owner_id, principal.credential_id, upstream.deployment_id, model, path, sent
    )
    on_outcome = _outcome_hook(request, generation)
    # With a chat_id, the question goes into the chat before anything is generated.
    remember = question_recorder(deployer, owner_id, extras.chat_id, sent)
    if extras.knowledge_bases:
        return await grounded_chat.answer(
            request.app.state.rag,
            grounded_chat.answer_request(owner_id, list(extras.knowledge_bases), body, upstream),
            model=model, streamed=bool(body.get("stream")), on_outcome=on_outcome, first=remember,
        )  # fmt: skip
    if remember is not None:
        await remember()
    streamed = bool(body.get("stream"))
    keep_usage_event = ask_for_usage(body) if streamed else True
    try:
        response = await _send(client, upstream, path, body)
    except httpx.ConnectError:
        # The cached server may have been restarted elsewhere since: ask the deployer again.
        cache.forget(owner_id, model)
        upstream = await _resolve(owner_id, model, deployer, cache)
        try:
            response = await _send(client, upstream, path, body)
        except httpx.TransportError:
            cache.forget(owner_id, model)
            raise not_ready(model, "not answering") from None
    except httpx.TransportError:
        cache.forget(owner_id, model)
        raise not_ready(model, "not answering") from None
    if streamed and response.status_code == 200:
        return UpstreamStream(
            response,
            keep_usage_event=keep_usage_event,
            collect_text=bool(extras.chat_id),  # only chat history keeps the text
            on_outcome=on_outcome,
        )
    try:
        content = await response.aread()
    except httpx.TransportError:
        cache.forget(owner_id, model)
        raise not_ready(model, "not answering") from None
    finally:
        await response.aclose()
    if response.status_code == 200:
        await on_outcome(read_whole(content))
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS}
    if response.status_code >= 400 and not _is_json(content):
        return JSONResponse(
            {"error": {"message": content.decode(errors="replace")[:2000],
                       "type": "invalid_request_error" if response.status_code < 500
                       else "server_error", "param": None, "code": "upstream_error"}},
            status_code=response.status_code,
        )  # fmt: skip
    return Response(content, status_code=response.status_code, headers=headers)


async def _send(
    client: httpx.AsyncClient, upstream: Upstream, path: str, body: dict[str, Any]
) -> httpx.Response:
    payload = {**body, "model": upstream.served_name}
    outgoing = client.build_request(
        "POST", f"{upstream.url}/{path}", json=payload, headers=upstream.headers
    )
    return await client.send(outgoing, stream=True)


def _outcome_hook(request: Request, generation: Generation) -> OutcomeHook:
    listeners: list[OutcomeListener] = request.app.state.outcome_listeners

    async def tell_listeners(outcome: Outcome) -> None:
        for listener in listeners:
            try:
                await listener(generation, outcome)
            except Exception as error:  # the answer is already the client's; log and go on
                log.warning("an outcome listener failed", error=str(error), exc_info=True)

    return tell_listeners


def _record_use(request: Request, owner_id: str, deployment_id: str, deployer: DeployerDep) -> None:
    """Restart the deployment's idle clock, in the background: a request never waits on it."""
    recorder: UseRecorder = request.app.state.use_recorder
    if not recorder.due(deployment_id):
        return

    async def touch() -> None:
        try:
            await deployer.call(
                "TouchDeployment",
                deployer_pb2.TouchDeploymentRequest(owner_id=owner_id, id=deployment_id),
            )
        except Exception as error:  # a lost touch only makes an idle stop come sooner
            log.warning("could not record a deployment's use", error=str(error))

    task = asyncio.create_task(touch())
    _pending.add(task)
    task.add_done_callback(_pending.discard)


def _is_json(content: bytes) -> bool:
    try:
        json.loads(content)
    except ValueError:
        return False
    return True
