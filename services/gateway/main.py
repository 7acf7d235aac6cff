"""Assemble the gateway: state built once in the lifespan, then middleware, errors, routers."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import httpx
import redis.asyncio as aioredis
from fastapi import APIRouter, FastAPI

from services.common.logging import setup_logging
from services.common.storage import s3_client
from services.common.telemetry import setup_telemetry, shutdown_telemetry
from services.gateway.chat_history import answer_recorder
from services.gateway.clients import (
    AuthClient,
    DeployerClient,
    IndexerClient,
    RagClient,
    TrainerClient,
)
from services.gateway.errors import install_error_handlers
from services.gateway.inference import ModelCache, UseRecorder
from services.gateway.middleware import AccessLog, BodySizeLimit, JsonDepthLimit
from services.gateway.rate_limits import RateLimiter
from services.gateway.routes import (
    admin,
    api_keys,
    auth,
    base_models,
    chats,
    credentials,
    datasets,
    deployments,
    health,
    inference,
    jobs,
    knowledge_bases,
    me,
    oauth,
    prompt_templates,
    usage,
)
from services.gateway.settings import GatewaySettings
from services.gateway.sign_in_throttle import SignInThrottle
from services.gateway.token_cache import TokenCache, listen_for_revocations
from services.gateway.upload_gate import UploadGate
from services.gateway.usage import UsageBatcher
from services.gateway.web import WEB_DIST, WebClient, api_reference

API_PREFIX = "/api/v1"


def api_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    modules = (
        auth, oauth, me, api_keys, admin, knowledge_bases, datasets, base_models, jobs,
        credentials, deployments, chats, prompt_templates, usage,
    )  # fmt: skip
    for module in modules:
        router.include_router(module.router)
    return router


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    setup_logging("gateway", settings.log_level)
    setup_telemetry("gateway", settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.auth = AuthClient(
            settings.auth_grpc_address,
            deadline_seconds=settings.grpc_deadline_seconds,
            token=settings.service_token,
        )
        app.state.rag = RagClient(
            settings.rag_grpc_address,
            deadline_seconds=settings.grpc_deadline_seconds,
            token=settings.service_token,
        )
        app.state.indexer = IndexerClient(
            settings.indexer_grpc_address,
            deadline_seconds=settings.grpc_deadline_seconds,
            token=settings.service_token,
        )
        app.state.trainer = TrainerClient(
            settings.trainer_grpc_address,
            deadline_seconds=settings.grpc_deadline_seconds,
            token=settings.service_token,
        )
        app.state.deployer = DeployerClient(
            settings.deployer_grpc_address,
            deadline_seconds=settings.grpc_deadline_seconds,
            token=settings.service_token,
        )
        app.state.model_cache = ModelCache(settings.model_cache_ttl_seconds)
        app.state.use_recorder = UseRecorder()
        # What each generation amounted to goes to these (usage accounting, chat history).
        app.state.outcome_listeners = []
        # Answers of requests with a chat_id go into that chat (chat_history.py).
        app.state.outcome_listeners.append(answer_recorder(app.state.deployer))
        # To the deployments' servers: generations take long, and streams stay open.
        app.state.inference_http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.inference_timeout_seconds, connect=5.0),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
            trust_env=False,
        )
        app.state.s3 = s3_client(settings)
        # Job event streams block on XREAD for seconds: the socket must wait longer.
        app.state.redis = aioredis.Redis.from_url(settings.redis_url, socket_timeout=60)
        app.state.token_cache = TokenCache(settings.auth_cache_ttl_seconds)
        app.state.rate_limiter = RateLimiter(app.state.redis, settings)
        app.state.sign_in_throttle = SignInThrottle(app.state.redis, settings)
        deployer = app.state.deployer
        app.state.usage = UsageBatcher(lambda batch: deployer.call("RecordUsage", batch))
        app.state.outcome_listeners.append(app.state.usage.listener)
        app.state.outcome_listeners.append(app.state.rate_limiter.count_tokens)
        usage_flusher = asyncio.create_task(app.state.usage.run(settings.usage_flush_seconds))
        listener = asyncio.create_task(
            listen_for_revocations(app.state.token_cache, settings.redis_url)
        )
        try:
            yield
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            app.state.usage.stop()
            await usage_flusher  # its last flush, before the deployer's channel closes
            await app.state.auth.close()
            await app.state.rag.close()
            await app.state.indexer.close()
            await app.state.trainer.close()
            await app.state.deployer.close()
            await app.state.inference_http.aclose()
            await app.state.redis.aclose()
            shutdown_telemetry()

    app = FastAPI(
        title="Forgeline API",
        version="1",
        description="Fine-tune, deploy and chat with open LLMs. Errors are always "
        '`{"error": {"code", "message"}}`.',
        lifespan=lifespan,
        # /docs is Swagger UI from the web client's bundle (web.py); FastAPI's own pages
        # load their scripts from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.add_api_route("/docs", api_reference, include_in_schema=False)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(api_router())
    app.include_router(inference.router)
    upload_paths = re.compile(
        re.escape(API_PREFIX)
        + f"({knowledge_bases.UPLOAD_PATH_PATTERN}|{datasets.UPLOAD_PATH_PATTERN})"
    )
    # Inside BodySizeLimit, so the body it reads is bounded.
    app.add_middleware(JsonDepthLimit, exempt_paths=upload_paths)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_request_bytes,
        # Uploads stream to the object store and are limited per file by the route.
        exempt_paths=upload_paths,
    )
    # Outside BodySizeLimit's exemption: upload routes authenticate before their body is read.
    app.add_middleware(
        UploadGate,
        paths=upload_paths,
        max_request_bytes=settings.max_upload_request_bytes,
    )
    app.add_middleware(AccessLog)
    if settings.otel_exporter != "none":
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz")
    if WEB_DIST.is_dir():  # the web client, once built (make run builds it)
        app.mount("/", WebClient(WEB_DIST), name="web")
    return app
