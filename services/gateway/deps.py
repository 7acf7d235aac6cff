"""Dependencies routes declare: settings, the service clients, storage, and who is calling."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from forgeline.v1 import auth_pb2

from services.common.errors import PermissionDenied, Unauthenticated
from services.gateway.clients import (
    AuthClient,
    DeployerClient,
    IndexerClient,
    RagClient,
    TrainerClient,
)
from services.gateway.settings import GatewaySettings
from services.gateway.sign_in_throttle import SignInThrottle
from services.gateway.token_cache import TokenCache

# auto_error=False: we answer missing credentials with our own error envelope.
_bearer = HTTPBearer(auto_error=False, description="An access token or a personal API key.")


def get_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


def get_auth(request: Request) -> AuthClient:
    client: AuthClient = request.app.state.auth
    return client


def get_token_cache(request: Request) -> TokenCache:
    cache: TokenCache = request.app.state.token_cache
    return cache


def get_rag(request: Request) -> RagClient:
    client: RagClient = request.app.state.rag
    return client


def get_indexer(request: Request) -> IndexerClient:
    client: IndexerClient = request.app.state.indexer
    return client


def get_trainer(request: Request) -> TrainerClient:
    client: TrainerClient = request.app.state.trainer
    return client


def get_deployer(request: Request) -> DeployerClient:
    client: DeployerClient = request.app.state.deployer
    return client


def get_sign_in_throttle(request: Request) -> SignInThrottle:
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    return throttle


def get_storage(request: Request) -> Any:
    """The platform's S3 client (boto3, thread-safe; call it from a worker thread)."""
    return request.app.state.s3


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
AuthDep = Annotated[AuthClient, Depends(get_auth)]
TokenCacheDep = Annotated[TokenCache, Depends(get_token_cache)]
RagDep = Annotated[RagClient, Depends(get_rag)]
IndexerDep = Annotated[IndexerClient, Depends(get_indexer)]
TrainerDep = Annotated[TrainerClient, Depends(get_trainer)]
StorageDep = Annotated[Any, Depends(get_storage)]
DeployerDep = Annotated[DeployerClient, Depends(get_deployer)]
SignInThrottleDep = Annotated[SignInThrottle, Depends(get_sign_in_throttle)]


def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(
            "not_authenticated", "Sign in, or send an API key as 'Authorization: Bearer <key>'."
        )
    if len(credentials.credentials) > 4096:
        raise Unauthenticated("token_invalid", "The access token is not valid.")
    return credentials.credentials


BearerToken = Annotated[str, Depends(bearer_token)]


async def current_principal(
    token: BearerToken, auth: AuthDep, cache: TokenCacheDep
) -> auth_pb2.Principal:
    principal = cache.get(token)
    if principal is None:
        principal = await auth.validate(token)
        cache.put(token, principal)
    return principal


CurrentPrincipal = Annotated[auth_pb2.Principal, Depends(current_principal)]


def admin_principal(principal: CurrentPrincipal) -> auth_pb2.Principal:
    if "admin" not in principal.scopes:
        raise PermissionDenied("admin_required", "Only an administrator can do this.")
    return principal


AdminPrincipal = Annotated[auth_pb2.Principal, Depends(admin_principal)]
