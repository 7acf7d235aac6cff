"""AuthService over gRPC: proto <-> domain only. Errors become statuses in the interceptor."""

from __future__ import annotations

import grpc
from forgeline.v1 import auth_pb2, auth_pb2_grpc

from services.auth import accounts, api_keys, oauth, sessions
from services.auth.context import AuthContext
from services.auth.models import ROLE_ADMIN, ApiKey, User
from services.auth.password_pool import PasswordPool
from services.auth.principal import Principal
from services.common.timestamps import to_timestamp

_KINDS = {
    "access_token": auth_pb2.CREDENTIAL_KIND_ACCESS_TOKEN,
    "api_key": auth_pb2.CREDENTIAL_KIND_API_KEY,
}


def user_to_proto(user: User) -> auth_pb2.User:
    return auth_pb2.User(
        id=user.id,
        email=user.email,
        role=auth_pb2.ROLE_ADMIN if user.role == ROLE_ADMIN else auth_pb2.ROLE_MEMBER,
        disabled=user.disabled,
        created_at=to_timestamp(user.created_at),
    )


def key_to_proto(key: ApiKey) -> auth_pb2.ApiKey:
    return auth_pb2.ApiKey(
        id=key.id,
        name=key.name,
        prefix=f"{api_keys.KEY_PREFIX}{key.prefix}",
        scopes=key.scopes.split(),
        created_at=to_timestamp(key.created_at),
        last_used_at=to_timestamp(key.last_used_at),
        revoked_at=to_timestamp(key.revoked_at),
        requests_per_minute=key.requests_per_minute or 0,
        tokens_per_minute=key.tokens_per_minute or 0,
    )


def pair_to_proto(pair: sessions.TokenPair) -> auth_pb2.TokenPair:
    return auth_pb2.TokenPair(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        user=user_to_proto(pair.user),
        refresh_expires_in=pair.refresh_expires_in,
    )


def principal_to_proto(principal: Principal) -> auth_pb2.Principal:
    return auth_pb2.Principal(
        user=user_to_proto(principal.user),
        scopes=principal.scopes,
        kind=_KINDS[principal.kind],
        credential_id=principal.credential_id,
        expires_at=to_timestamp(principal.expires_at),
        requests_per_minute=principal.requests_per_minute,
        tokens_per_minute=principal.tokens_per_minute,
    )


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):  # type: ignore[misc]
    def __init__(self, ctx: AuthContext) -> None:
        self.ctx = ctx
        # The calls that hash a password run on their own pool, not the server's threads.
        self.passwords = PasswordPool(
            workers=ctx.settings.password_hash_workers, queue=ctx.settings.password_hash_queue
        )

    def Register(
        self, request: auth_pb2.RegisterRequest, context: grpc.ServicerContext
    ) -> auth_pb2.User:
        return user_to_proto(
            self.passwords.run(
                accounts.register,
                self.ctx,
                email=request.email,
                password=request.password,
                setup_code=request.setup_code,
            )
        )

    def Login(
        self, request: auth_pb2.LoginRequest, context: grpc.ServicerContext
    ) -> auth_pb2.TokenPair:
        return pair_to_proto(
            self.passwords.run(
                accounts.login, self.ctx, email=request.email, password=request.password
            )
        )

    def Refresh(
        self, request: auth_pb2.RefreshRequest, context: grpc.ServicerContext
    ) -> auth_pb2.TokenPair:
        return pair_to_proto(sessions.refresh(self.ctx, refresh_token=request.refresh_token))

    def Logout(
        self, request: auth_pb2.LogoutRequest, context: grpc.ServicerContext
    ) -> auth_pb2.LogoutResponse:
        sessions.logout(self.ctx, access_token=request.access_token)
        return auth_pb2.LogoutResponse()

    def ValidateToken(
        self, request: auth_pb2.ValidateTokenRequest, context: grpc.ServicerContext
    ) -> auth_pb2.Principal:
        return principal_to_proto(sessions.validate(self.ctx, token=request.token))

    def GetUser(
        self, request: auth_pb2.GetUserRequest, context: grpc.ServicerContext
    ) -> auth_pb2.User:
        return user_to_proto(accounts.get_user(self.ctx, user_id=request.user_id))

    def CreateApiKey(
        self, request: auth_pb2.CreateApiKeyRequest, context: grpc.ServicerContext
    ) -> auth_pb2.CreatedApiKey:
        key, secret = api_keys.create(
            self.ctx,
            user_id=request.user_id,
            name=request.name,
            scopes=list(request.scopes),
            requests_per_minute=request.requests_per_minute,
            tokens_per_minute=request.tokens_per_minute,
        )
        return auth_pb2.CreatedApiKey(key=key_to_proto(key), secret=secret)

    def ListApiKeys(
        self, request: auth_pb2.ListApiKeysRequest, context: grpc.ServicerContext
    ) -> auth_pb2.ListApiKeysResponse:
        keys = api_keys.list_for(self.ctx, user_id=request.user_id)
        return auth_pb2.ListApiKeysResponse(keys=[key_to_proto(k) for k in keys])

    def RevokeApiKey(
        self, request: auth_pb2.RevokeApiKeyRequest, context: grpc.ServicerContext
    ) -> auth_pb2.RevokeApiKeyResponse:
        api_keys.revoke(self.ctx, user_id=request.user_id, key_id=request.key_id)
        return auth_pb2.RevokeApiKeyResponse()

    def ListUsers(
        self, request: auth_pb2.ListUsersRequest, context: grpc.ServicerContext
    ) -> auth_pb2.ListUsersResponse:
        users, count = accounts.list_users(
            self.ctx, caller_id=request.caller_id, limit=request.limit, offset=request.offset
        )
        return auth_pb2.ListUsersResponse(users=[user_to_proto(u) for u in users], count=count)

    def SetUserDisabled(
        self, request: auth_pb2.SetUserDisabledRequest, context: grpc.ServicerContext
    ) -> auth_pb2.User:
        user = accounts.set_disabled(
            self.ctx,
            caller_id=request.caller_id,
            user_id=request.user_id,
            disabled=request.disabled,
        )
        return user_to_proto(user)

    def ListOAuthProviders(
        self, request: auth_pb2.ListOAuthProvidersRequest, context: grpc.ServicerContext
    ) -> auth_pb2.ListOAuthProvidersResponse:
        return auth_pb2.ListOAuthProvidersResponse(
            providers=[
                auth_pb2.OAuthProvider(name=p.name, display_name=p.display_name or p.name.title())
                for p in self.ctx.settings.oauth_providers
            ]
        )

    def StartOAuth(
        self, request: auth_pb2.StartOAuthRequest, context: grpc.ServicerContext
    ) -> auth_pb2.StartOAuthResponse:
        url, state = oauth.start(
            self.ctx, provider_name=request.provider, redirect_uri=request.redirect_uri
        )
        return auth_pb2.StartOAuthResponse(authorization_url=url, state=state)

    def CompleteOAuth(
        self, request: auth_pb2.CompleteOAuthRequest, context: grpc.ServicerContext
    ) -> auth_pb2.TokenPair:
        pair = oauth.complete(
            self.ctx,
            provider_name=request.provider,
            code=request.code,
            state=request.state,
            redirect_uri=request.redirect_uri,
        )
        return pair_to_proto(pair)
