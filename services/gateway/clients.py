"""Typed wrapper over the auth gRPC stub: failures come out as `ForgelineError`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from forgeline.v1 import auth_pb2, auth_pb2_grpc

from services.common.errors import ForgelineError, from_grpc
from services.common.grpc_client import aio_channel

R = TypeVar("R")


async def _call(rpc: Callable[..., Awaitable[R]], request: object) -> R:
    try:
        return await rpc(request)
    except grpc.aio.AioRpcError as error:
        raise from_grpc(
            error.code(), error.details(), tuple(error.trailing_metadata() or ()), service="auth"
        ) from None


class AuthClient:
    def __init__(self, address: str, *, deadline_seconds: float) -> None:
        self._channel = aio_channel(address, deadline_seconds=deadline_seconds)
        self._stub = auth_pb2_grpc.AuthServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def register(self, email: str, password: str) -> auth_pb2.User:
        return await _call(
            self._stub.Register, auth_pb2.RegisterRequest(email=email, password=password)
        )

    async def login(self, email: str, password: str) -> auth_pb2.TokenPair:
        return await _call(self._stub.Login, auth_pb2.LoginRequest(email=email, password=password))

    async def refresh(self, refresh_token: str) -> auth_pb2.TokenPair:
        return await _call(self._stub.Refresh, auth_pb2.RefreshRequest(refresh_token=refresh_token))

    async def logout(self, access_token: str) -> None:
        await _call(self._stub.Logout, auth_pb2.LogoutRequest(access_token=access_token))

    async def validate(self, token: str) -> auth_pb2.Principal:
        return await _call(self._stub.ValidateToken, auth_pb2.ValidateTokenRequest(token=token))

    async def get_user(self, user_id: str) -> auth_pb2.User:
        return await _call(self._stub.GetUser, auth_pb2.GetUserRequest(user_id=user_id))

    async def create_api_key(
        self, user_id: str, name: str, scopes: list[str]
    ) -> auth_pb2.CreatedApiKey:
        return await _call(
            self._stub.CreateApiKey,
            auth_pb2.CreateApiKeyRequest(user_id=user_id, name=name, scopes=scopes),
        )

    async def list_api_keys(self, user_id: str) -> auth_pb2.ListApiKeysResponse:
        return await _call(self._stub.ListApiKeys, auth_pb2.ListApiKeysRequest(user_id=user_id))

    async def revoke_api_key(self, user_id: str, key_id: str) -> None:
        await _call(
            self._stub.RevokeApiKey, auth_pb2.RevokeApiKeyRequest(user_id=user_id, key_id=key_id)
        )

    async def list_users(
        self, caller_id: str, limit: int, offset: int
    ) -> auth_pb2.ListUsersResponse:
        return await _call(
            self._stub.ListUsers,
            auth_pb2.ListUsersRequest(caller_id=caller_id, limit=limit, offset=offset),
        )

    async def set_user_disabled(
        self, caller_id: str, user_id: str, disabled: bool
    ) -> auth_pb2.User:
        return await _call(
            self._stub.SetUserDisabled,
            auth_pb2.SetUserDisabledRequest(
                caller_id=caller_id, user_id=user_id, disabled=disabled
            ),
        )

    async def list_oauth_providers(self) -> auth_pb2.ListOAuthProvidersResponse:
        return await _call(self._stub.ListOAuthProviders, auth_pb2.ListOAuthProvidersRequest())

    async def start_oauth(self, provider: str, redirect_uri: str) -> auth_pb2.StartOAuthResponse:
        return await _call(
            self._stub.StartOAuth,
            auth_pb2.StartOAuthRequest(provider=provider, redirect_uri=redirect_uri),
        )

    async def complete_oauth(
        self, provider: str, code: str, state: str, redirect_uri: str
    ) -> auth_pb2.TokenPair:
        return await _call(
            self._stub.CompleteOAuth,
            auth_pb2.CompleteOAuthRequest(
                provider=provider, code=code, state=state, redirect_uri=redirect_uri
            ),
        )


__all__ = ["AuthClient", "ForgelineError"]
