"""Self-test of the OpenID Provider harness (tests/servers/oidc.py); no Forgeline code involved.

It drives a real authorization code + PKCE flow against the provider with Authlib, the way a
relying party would, and checks the ID token against the provider's published JWKS.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.servers import free_port
from tests.servers.oidc import OidcProvider, run_oidc_provider

pytestmark = pytest.mark.integration

CLIENT_ID = "forgeline-test"
CLIENT_SECRET = "forgeline-test-secret"
SCOPE = "openid email profile"
# Nothing listens here: the flow stops at the redirect to it and reads the query string.
REDIRECT_URI = f"http://127.0.0.1:{free_port()}/callback"


@pytest.fixture(scope="module")
def oidc() -> Iterator[OidcProvider]:
    with run_oidc_provider(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=[REDIRECT_URI]
    ) as provider:
        yield provider


@pytest.fixture(scope="module")
def metadata(oidc: OidcProvider) -> dict[str, object]:
    response = httpx.get(oidc.discovery_url, timeout=10)
    response.raise_for_status()
    data: dict[str, object] = response.json()
    return data


def make_client(auth_method: str = "client_secret_basic") -> OAuth2Session:
    return OAuth2Session(
        CLIENT_ID,
        CLIENT_SECRET,
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method=auth_method,
    )


def follow_to_redirect_uri(browser: requests.Session, url: str) -> dict[str, str]:
    """Follow the provider's redirects (keeping cookies) until one points at REDIRECT_URI."""
    for _ in range(10):
        response = browser.get(url, allow_redirects=False, timeout=10)
        assert response.is_redirect, (
            f"expected a redirect from {url}, got {response.status_code}: {response.text[:500]}"
        )
        url = urljoin(url, response.headers["Location"])
        if url.startswith(REDIRECT_URI):
            query = parse_qs(urlsplit(url).query)
            return {key: values[0] for key, values in query.items()}
    raise AssertionError(f"too many redirects; last Location: {url}")


def authorize(
    client: OAuth2Session,
    metadata: dict[str, object],
    *,
    browser: requests.Session | None = None,
    nonce: str | None = None,
) -> tuple[dict[str, str], str, str]:
    """Run the front channel; return (redirect query params, code_verifier, state)."""
    code_verifier = generate_token(48)
    url, state = client.create_authorization_url(
        str(metadata["authorization_endpoint"]),
        code_verifier=code_verifier,
        nonce=nonce or generate_token(16),
    )
    params = follow_to_redirect_uri(browser or requests.Session(), url)
    return params, code_verifier, state


def decode_id_token(oidc: OidcProvider, metadata: dict[str, object], id_token: str) -> jwt.Token:
    jwks = httpx.get(str(metadata["jwks_uri"]), timeout=10).json()
    token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert token.header["alg"] == "RS256"
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": oidc.issuer},
        aud={"essential": True, "value": CLIENT_ID},
        exp={"essential": True},
        sub={"essential": True},
    ).validate(token.claims)
    return token


def test_discovery_advertises_what_the_tests_rely_on(oidc: OidcProvider, metadata: dict) -> None:
    assert metadata["issuer"] == oidc.issuer
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in metadata["id_token_signing_alg_values_supported"]
    assert {"client_secret_basic", "client_secret_post"} <= set(
        metadata["token_endpoint_auth_methods_supported"]
    )
    assert {"openid", "email", "profile"} <= set(metadata["scopes_supported"])


@pytest.mark.parametrize(
    ("auth_method", "email_verified"),
    [("client_secret_basic", True), ("client_secret_post", False)],
)
def test_code_flow_with_pkce_yields_id_token_with_email_claims(
    oidc: OidcProvider, metadata: dict, auth_method: str, email_verified: bool
) -> None:
    sub = f"user-{auth_method}"
    email = f"{sub}@example.test"
    oidc.set_account(sub, email, email_verified=email_verified)
    client = make_client(auth_method)
    nonce = generate_token(16)

    params, code_verifier, state = authorize(client, metadata, nonce=nonce)

    assert "error" not in params, params
    assert params["state"] == state
    assert params["iss"] == oidc.issuer
    token = client.fetch_token(
        str(metadata["token_endpoint"]), code=params["code"], code_verifier=code_verifier
    )
    claims = decode_id_token(oidc, metadata, token["id_token"]).claims
    assert claims["sub"] == sub
    assert claims["email"] == email
    assert claims["email_verified"] is email_verified
    assert claims["nonce"] == nonce


def test_token_exchange_needs_the_right_code_verifier(oidc: OidcProvider, metadata: dict) -> None:
    oidc.set_account("pkce-user", "pkce-user@example.test")
    client = make_client()
    token_endpoint = str(metadata["token_endpoint"])

    params, _, _ = authorize(client, metadata)
    with pytest.raises(OAuthError) as wrong:
        client.fetch_token(token_endpoint, code=params["code"], code_verifier=generate_token(48))
    assert wrong.value.error == "invalid_grant"

    params, _, _ = authorize(client, metadata)
    with pytest.raises(OAuthError) as missing:
        client.fetch_token(token_endpoint, code=params["code"])
    assert missing.value.error == "invalid_grant"


def test_authorization_request_without_pkce_is_refused(metadata: dict) -> None:
    client = OAuth2Session(CLIENT_ID, CLIENT_SECRET, scope=SCOPE, redirect_uri=REDIRECT_URI)
    url, _ = client.create_authorization_url(str(metadata["authorization_endpoint"]))

    params = follow_to_redirect_uri(requests.Session(), url)

    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]


def test_set_account_switches_user_even_with_kept_cookies(
    oidc: OidcProvider, metadata: dict
) -> None:
    browser = requests.Session()  # one cookie jar for both logins, as a real browser would
    client = make_client()
    subs = []
    for sub in ("first-user", "second-user"):
        oidc.set_account(sub, f"{sub}@example.test")
        params, code_verifier, _ = authorize(client, metadata, browser=browser)
        token = client.fetch_token(
            str(metadata["token_endpoint"]), code=params["code"], code_verifier=code_verifier
        )
        subs.append(decode_id_token(oidc, metadata, token["id_token"]).claims["sub"])
    assert subs == ["first-user", "second-user"]
