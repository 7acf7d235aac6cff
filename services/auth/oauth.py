"""OAuth 2 / OpenID Connect login through Authlib.

Any OpenID provider works by its discovery URL; Google and GitHub are presets. Every login
uses PKCE (S256), a single-use `state` and, for OpenID providers, a `nonce` checked against
the signed ID token. A provider login is linked to a Forgeline user only by a *verified*
email address.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx2
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from cachetools import TTLCache
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlmodel import col, delete

from services.auth import crud
from services.auth.accounts import normalize_email
from services.auth.context import AuthContext
from services.auth.models import Identity, OAuthState
from services.auth.registration import check_may_register
from services.auth.sessions import TokenPair, start_session
from services.auth.settings import OAuthProviderConfig
from services.common.db import session_scope
from services.common.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from services.common.outbound import (
    OutboundPolicy,
    OutboundRefused,
    guarded_client,
    guarded_transport,
    policy_for,
)
from services.common.timestamps import utcnow

HTTP_TIMEOUT = 10
# Discovery documents, key sets, tokens and profiles are small; more is not a provider.
MAX_PROVIDER_RESPONSE_BYTES = 1024 * 1024
GOOGLE_DISCOVERY = "https://accounts.google.com/.well-known/openid-configuration"
GITHUB = {
    "authorization_endpoint": "https://github.com/login/oauth/authorize",
    "token_endpoint": "https://github.com/login/oauth/access_token",
    "userinfo_endpoint": "https://api.github.com/user",
    "emails_endpoint": "https://api.github.com/user/emails",
}
_metadata_cache: TTLCache[str, dict[str, Any]] = TTLCache(maxsize=32, ttl=3600)


@dataclass(frozen=True)
class ProviderLogin:
    subject: str
    email: str
    email_verified: bool


def _provider(ctx: AuthContext, name: str) -> OAuthProviderConfig:
    for provider in ctx.settings.oauth_providers:
        if provider.name == name:
            return provider
    raise NotFound("oauth_provider_not_found", f"Sign-in with '{name}' is not configured.")


def _policy(ctx: AuthContext) -> OutboundPolicy:
    """Every call to a provider (discovery, keys, token, profile) goes through the outbound
    guard: a discovery document names the other URLs, so it must not send us inside our own
    network. A provider on a private network (a Keycloak in the VPC) needs the operator's
    OAUTH_ALLOW_PRIVATE_PROVIDERS or OUTBOUND_ALLOWED_NETWORKS."""
    return policy_for(
        ctx.settings,
        purpose="sign-in provider",
        allow_private=ctx.settings.oauth_allow_private_providers,
    )


def _unavailable(exc: Exception) -> Unavailable:
    reason = f" ({exc.message})" if isinstance(exc, OutboundRefused) else ""
    return Unavailable(
        "oauth_provider_unavailable", f"The sign-in provider could not be reached{reason}."
    )


def _get_json(ctx: AuthContext, url: str, **kwargs: Any) -> Any:
    try:
        with guarded_client(
            _policy(ctx),
            timeout=HTTP_TIMEOUT,
            max_response_bytes=MAX_PROVIDER_RESPONSE_BYTES,
            flavour=httpx2,
        ) as http:
            response = http.get(url, **kwargs)
            response.raise_for_status()
            return response.json()
    except (httpx2.HTTPError, OutboundRefused, ValueError) as exc:
        raise _unavailable(exc) from exc


def _metadata(ctx: AuthContext, provider: OAuthProviderConfig) -> dict[str, Any]:
    if provider.preset == "github":
        return GITHUB
    url = provider.discovery_url or GOOGLE_DISCOVERY
    if url not in _metadata_cache:
        _metadata_cache[url] = _get_json(ctx, url)
    return _metadata_cache[url]


def _scope(provider: OAuthProviderConfig) -> str:
    if provider.scope:
        return provider.scope
    return "read:user user:email" if provider.preset == "github" else "openid email profile"


def _client(ctx: AuthContext, provider: OAuthProviderConfig, redirect_uri: str) -> OAuth2Client:
    return OAuth2Client(
        provider.client_id,
        provider.client_secret.get_secret_value(),
        scope=_scope(provider),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        transport=guarded_transport(
            _policy(ctx), max_response_bytes=MAX_PROVIDER_RESPONSE_BYTES, flavour=httpx2
        ),
        trust_env=False,
        timeout=HTTP_TIMEOUT,
    )


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def start(ctx: AuthContext, *, provider_name: str, redirect_uri: str) -> tuple[str, str]:
    """Returns (authorization URL, state). The state is also bound to the browser by the
    gateway's cookie, so a login started in one browser cannot finish in another."""
    provider = _provider(ctx, provider_name)
    meta = _metadata(ctx, provider)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    extra = {} if provider.preset == "github" else {"nonce": nonce}
    url, _ = _client(ctx, provider, redirect_uri).create_authorization_url(
        meta["authorization_endpoint"], state=state, code_verifier=verifier, **extra
    )
    now = utcnow()
    with session_scope(ctx.engine) as db:
        db.exec(delete(OAuthState).where(col(OAuthState.expires_at) < now))
        db.add(
            OAuthState(
                state_hash=_state_hash(state),
                provider=provider.name,
                nonce=nonce,
                code_verifier_encrypted=ctx.secrets.encrypt(verifier),
                redirect_uri=redirect_uri,
                expires_at=now + timedelta(seconds=ctx.settings.oauth_state_ttl_seconds),
            )
        )
    return url, state


def _take_state(ctx: AuthContext, *, state: str, provider: str, redirect_uri: str) -> OAuthState:
    """Consume the state row: each state works once, for its provider, before it expires."""
    invalid = Unauthenticated(
        "oauth_state_invalid", "This sign-in link is no longer valid; please start again."
    )
    if not state or len(state) > 256:
        raise invalid
    with session_scope(ctx.engine) as db:
        row = db.get(OAuthState, _state_hash(state))
        if row is None:
            raise invalid
        db.delete(row)
    if row.provider != provider or row.redirect_uri != redirect_uri or row.expires_at < utcnow():
        raise invalid
    return row


def _oidc_login(
    ctx: AuthContext,
    provider: OAuthProviderConfig,
    meta: dict[str, Any],
    token: dict[str, Any],
    nonce: str,
) -> ProviderLogin:
    id_token = token.get("id_token")
    if not id_token:
        raise Unauthenticated("oauth_id_token_missing", "The provider sent no ID token.")
    keys = KeySet.import_key_set(_get_json(ctx, meta["jwks_uri"]))
    try:
        decoded = jwt.decode(
            id_token, keys, algorithms=meta.get("id_token_signing_alg_values_supported", ["RS256"])
        )
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": meta["issuer"]},
            aud={"essential": True, "value": provider.client_id},
            sub={"essential": True},
            exp={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise Unauthenticated(
            "oauth_id_token_invalid", "The provider's ID token could not be verified."
        ) from exc
    claims = decoded.claims
    if claims.get("nonce") != nonce:
        raise Unauthenticated(
            "oauth_nonce_mismatch", "The sign-in response did not match this request."
        )
    if "email" not in claims and meta.get("userinfo_endpoint"):
        claims = {
            **_get_json(
                ctx,
                meta["userinfo_endpoint"],
                headers={"Authorization": f"Bearer {token['access_token']}"},
            ),
            "sub": claims["sub"],
        }
    email = claims.get("email")
    if not email:
        raise Unauthenticated("oauth_email_missing", "The provider did not share an email address.")
    return ProviderLogin(str(claims["sub"]), str(email), claims.get("email_verified") is True)


def _github_login(ctx: AuthContext, token: dict[str, Any]) -> ProviderLogin:
    headers = {
        "Authorization": f"Bearer {token['access_token']}",
        "Accept": "application/vnd.github+json",
    }
    profile = _get_json(ctx, GITHUB["userinfo_endpoint"], headers=headers)
    emails = _get_json(ctx, GITHUB["emails_endpoint"], headers=headers)
    primary = next((e for e in emails if e.get("primary")), None)
    if primary is None:
        raise Unauthenticated("oauth_email_missing", "GitHub did not share an email address.")
    return ProviderLogin(str(profile["id"]), str(primary["email"]), primary.get("verified") is True)


def complete(
    ctx: AuthContext, *, provider_name: str, code: str, state: str, redirect_uri: str
) -> TokenPair:
    provider = _provider(ctx, provider_name)
    row = _take_state(ctx, state=state, provider=provider.name, redirect_uri=redirect_uri)
    if not code or len(code) > 2048:
        raise InvalidInput("oauth_code_missing", "The provider did not send a sign-in code.")
    meta = _metadata(ctx, provider)
    try:
        with _client(ctx, provider, redirect_uri) as client:
            token = client.fetch_token(
                meta["token_endpoint"],
                code=code,
                code_verifier=ctx.secrets.decrypt(row.code_verifier_encrypted),
            )
    except OutboundRefused as exc:
        raise _unavailable(exc) from exc
    except (OAuthError, httpx2.HTTPError) as exc:
        raise Unauthenticated(
            "oauth_exchange_failed", "The provider refused the sign-in; please start again."
        ) from exc
    login = (
        _github_login(ctx, token)
        if provider.preset == "github"
        else _oidc_login(ctx, provider, meta, token, row.nonce)
    )
    return _link_and_sign_in(ctx, provider=provider.name, login=login)


def _link_and_sign_in(ctx: AuthContext, *, provider: str, login: ProviderLogin) -> TokenPair:
    with session_scope(ctx.engine) as db:
        identity = crud.get_identity(db, provider=provider, subject=login.subject)
        if identity is not None:
            user = crud.get_user(db, user_id=identity.user_id)
        else:
            if not login.email_verified:
                raise PermissionDenied(
                    "oauth_email_unverified",
                    "Your email address at this provider is not verified, so it cannot be "
                    "linked to a Forgeline account. Verify it there and try again.",
                )
            email = normalize_email(login.email)
            user = crud.get_user_by_email(db, email=email)
            if user is None:
                check_may_register(ctx.settings, email)  # a first sign-in creates an account
                user = crud.create_user(db, email=email, password_hash=None)
            db.add(Identity(user_id=user.id, provider=provider, subject=login.subject, email=email))
        if user is None or user.disabled:
            raise PermissionDenied("account_disabled", "This account has been disabled.")
        return start_session(ctx, db, user)
