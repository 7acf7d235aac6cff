"""Typed wrappers over the auth, RAG and indexer gRPC stubs: failures come out as
`ForgelineError`, with the service named when it cannot be reached."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from forgeline.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    deployer_pb2_grpc,
    indexer_pb2,
    indexer_pb2_grpc,
    rag_pb2,
    rag_pb2_grpc,
    trainer_pb2_grpc,
)
from pydantic import SecretStr

from services.common.errors import ForgelineError, from_grpc
from services.common.grpc_client import aio_channel

R = TypeVar("R")

# An answer streams for as long as generation takes; this only stops a call nobody ends.
ANSWER_DEADLINE_SECONDS = 300.0


def _rpc_error(error: grpc.aio.AioRpcError, service: str) -> ForgelineError:
    return from_grpc(
        error.code(), error.details(), tuple(error.trailing_metadata() or ()), service=service
    )


RETRIEVE_DEADLINE_SECONDS = 60.0


async def _call(
    rpc: Callable[..., Awaitable[R]],
    request: object,
    *,
    service: str = "auth",
    timeout: float | None = None,
) -> R:
    try:
        return await rpc(request, timeout=timeout) if timeout else await rpc(request)
    except grpc.aio.AioRpcError as error:
        raise _rpc_error(error, service) from None


class AuthClient:
    def __init__(self, address: str, *, deadline_seconds: float, token: SecretStr | str) -> None:
        self._channel = aio_channel(address, deadline_seconds=deadline_seconds, token=token)
        self._stub = auth_pb2_grpc.AuthServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def register(self, email: str, password: str, setup_code: str = "") -> auth_pb2.User:
        return await _call(
            self._stub.Register,
            auth_pb2.RegisterRequest(email=email, password=password, setup_code=setup_code),
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
        self,
        user_id: str,
        name: str,
        scopes: list[str],
        *,
        requests_per_minute: int = 0,
        tokens_per_minute: int = 0,
    ) -> auth_pb2.CreatedApiKey:
        return await _call(
            self._stub.CreateApiKey,
            auth_pb2.CreateApiKeyRequest(
                user_id=user_id,
                name=name,
                scopes=scopes,
                requests_per_minute=requests_per_minute,
                tokens_per_minute=tokens_per_minute,
            ),
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


class RagClient:
    """Knowledge bases, retrieval and streamed, grounded answers."""

    def __init__(
        self,
        address: str,
        *,
        deadline_seconds: float,
        answer_deadline_seconds: float = ANSWER_DEADLINE_SECONDS,
        token: SecretStr | str,
    ) -> None:
        self._channel = aio_channel(address, deadline_seconds=deadline_seconds, token=token)
        self._stub = rag_pb2_grpc.RagServiceStub(self._channel)
        self._answer_deadline = answer_deadline_seconds

    async def close(self) -> None:
        await self._channel.close()

    async def create_knowledge_base(
        self, request: rag_pb2.CreateKnowledgeBaseRequest
    ) -> rag_pb2.KnowledgeBase:
        return await _call(self._stub.CreateKnowledgeBase, request, service="rag")

    async def list_knowledge_bases(self, owner_id: str) -> rag_pb2.ListKnowledgeBasesResponse:
        return await _call(
            self._stub.ListKnowledgeBases,
            rag_pb2.ListKnowledgeBasesRequest(owner_id=owner_id),
            service="rag",
        )

    async def get_knowledge_base(self, owner_id: str, kb_id: str) -> rag_pb2.KnowledgeBase:
        return await _call(
            self._stub.GetKnowledgeBase,
            rag_pb2.GetKnowledgeBaseRequest(owner_id=owner_id, id=kb_id),
            service="rag",
        )

    async def update_knowledge_base(
        self, request: rag_pb2.UpdateKnowledgeBaseRequest
    ) -> rag_pb2.KnowledgeBase:
        return await _call(self._stub.UpdateKnowledgeBase, request, service="rag")

    async def delete_knowledge_base(self, owner_id: str, kb_id: str) -> None:
        await _call(
            self._stub.DeleteKnowledgeBase,
            rag_pb2.DeleteKnowledgeBaseRequest(owner_id=owner_id, id=kb_id),
            service="rag",
        )

    async def retrieve(self, request: rag_pb2.RetrieveRequest) -> rag_pb2.RetrieveResponse:
        # Searching a large knowledge base (and building its BM25 index after a change)
        # takes longer than the default deadline of internal calls.
        return await _call(
            self._stub.Retrieve, request, service="rag", timeout=RETRIEVE_DEADLINE_SECONDS
        )

    async def answer(
        self, request: rag_pb2.AnswerRequest
    ) -> AsyncGenerator[rag_pb2.AnswerEvent, None]:
        """Start an answer and wait for its first event.

        A failure before that event (no such knowledge base, the service is down) is raised
        here as a `ForgelineError`, so the caller can still answer with an HTTP error. The
        events come from the returned generator; a failure after the first one is raised from
        it, also as a `ForgelineError`. Closing the generator, or cancelling the task that
        iterates it, cancels the gRPC call, so the RAG service stops generating.
        """
        call = self._stub.Answer(request, timeout=self._answer_deadline)
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as error:
            raise _rpc_error(error, "rag") from None
        except BaseException:
            call.cancel()
            raise
        return _answer_events(call, first)


async def _answer_events(call: Any, first: Any) -> AsyncGenerator[rag_pb2.AnswerEvent, None]:
    try:
        event = first
        while event is not grpc.aio.EOF:
            yield event
            event = await call.read()
    except grpc.aio.AioRpcError as error:
        raise _rpc_error(error, "rag") from None
    finally:
        call.cancel()  # a no-op once the call has finished


class IndexerClient:
    """Documents of knowledge bases and their sync state."""

    def __init__(self, address: str, *, deadline_seconds: float, token: SecretStr | str) -> None:
        self._channel = aio_channel(address, deadline_seconds=deadline_seconds, token=token)
        self._stub = indexer_pb2_grpc.IndexerServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def list_documents(self, owner_id: str, kb_id: str) -> indexer_pb2.ListDocumentsResponse:
        return await _call(
            self._stub.ListDocuments,
            indexer_pb2.ListDocumentsRequest(owner_id=owner_id, kb_id=kb_id),
            service="indexer",
        )

    async def object_changed(
        self,
        *,
        owner_id: str,
        kb_id: str,
        bucket: str,
        key: str,
        etag: str = "",
        deleted: bool = False,
        size: int = 0,
    ) -> indexer_pb2.Document:
        return await _call(
            self._stub.ObjectChanged,
            indexer_pb2.ObjectChangedRequest(
                owner_id=owner_id,
                kb_id=kb_id,
                bucket=bucket,
                key=key,
                etag=etag,
                deleted=deleted,
                size=size,
            ),
            service="indexer",
        )

    async def reconcile(self, owner_id: str, kb_id: str) -> indexer_pb2.ReconcileResponse:
        return await _call(
            self._stub.Reconcile,
            indexer_pb2.ReconcileRequest(owner_id=owner_id, kb_id=kb_id),
            service="indexer",
        )

    async def drop_knowledge_base(self, owner_id: str, kb_id: str) -> None:
        await _call(
            self._stub.DropKnowledgeBase,
            indexer_pb2.DropKnowledgeBaseRequest(owner_id=owner_id, kb_id=kb_id),
            service="indexer",
        )


__all__ = ["AuthClient", "ForgelineError", "IndexerClient", "RagClient"]


class TrainerClient:
    """Datasets, the base-model catalogue, estimates and training jobs. One generic call:
    the routes name the RPC, and every one maps errors the same way."""

    def __init__(self, address: str, *, deadline_seconds: float, token: SecretStr | str) -> None:
        self._channel = aio_channel(address, deadline_seconds=deadline_seconds, token=token)
        self._stub = trainer_pb2_grpc.TrainerServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def call(self, rpc: str, request: Any) -> Any:
        return await _call(getattr(self._stub, rpc), request, service="trainer")


class DeployerClient:
    """Deployments and the lookup of a caller's `model`. One generic call, like the trainer's."""

    def __init__(self, address: str, *, deadline_seconds: float, token: SecretStr | str) -> None:
        self._channel = aio_channel(address, deadline_seconds=deadline_seconds, token=token)
        self._stub = deployer_pb2_grpc.DeployerServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def call(self, rpc: str, request: Any) -> Any:
        return await _call(getattr(self._stub, rpc), request, service="deployer")
