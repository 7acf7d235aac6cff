"""ID-token checks of the OIDC login: signature, issuer, audience, expiry and nonce."""

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from pydantic import SecretStr

from services.auth import oauth
from services.auth.settings import OAuthProviderConfig
from services.common.errors import Unauthenticated

ISSUER = "https://idp.example.com"
PROVIDER = OAuthProviderConfig(
    name="corp",
    discovery_url=f"{ISSUER}/.well-known/openid-configuration",
    client_id="forgeline",
    client_secret=SecretStr("s"),
)
META = {
    "issuer": ISSUER,
    "jwks_uri": f"{ISSUER}/jwks",
    "id_token_signing_alg_values_supported": ["RS256"],
}
# The auth context is only for the provider calls, which _jwks replaces.
NO_CONTEXT: Any = None
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})


@pytest.fixture(autouse=True)
def _jwks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        oauth, "_get_json", lambda ctx, url, **_: KeySet([KEY]).as_dict(private=False)
    )


def _id_token(**overrides: Any) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "forgeline",
        "sub": "alice",
        "iat": now,
        "exp": now + 300,
        "nonce": "n-123",
        "email": "alice@example.com",
        "email_verified": True,
        **overrides,
    }
    return {
        "id_token": jwt.encode({"alg": "RS256", "kid": "k1"}, claims, KEY),
        "access_token": "at",
    }


def test_valid_id_token() -> None:
    login = oauth._oidc_login(NO_CONTEXT, PROVIDER, META, _id_token(), "n-123")
    assert (login.subject, login.email, login.email_verified) == (
        "alice",
        "alice@example.com",
        True,
    )


def test_nonce_must_match() -> None:
    with pytest.raises(Unauthenticated) as error:
        oauth._oidc_login(NO_CONTEXT, PROVIDER, META, _id_token(nonce="replayed"), "n-123")
    assert error.value.code == "oauth_nonce_mismatch"
    with pytest.raises(Unauthenticated):
        oauth._oidc_login(NO_CONTEXT, PROVIDER, META, _id_token(nonce=None), "n-123")


@pytest.mark.parametrize(
    "overrides",
    [{"aud": "someone-else"}, {"iss": "https://evil.example.com"}, {"exp": int(time.time()) - 10}],
)
def test_claims_are_checked(overrides: dict[str, Any]) -> None:
    with pytest.raises(Unauthenticated) as error:
        oauth._oidc_login(NO_CONTEXT, PROVIDER, META, _id_token(**overrides), "n-123")
    assert error.value.code == "oauth_id_token_invalid"


def test_a_token_signed_by_another_key_is_refused() -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    claims = {
        "iss": ISSUER,
        "aud": "forgeline",
        "sub": "x",
        "exp": int(time.time()) + 60,
        "nonce": "n",
    }
    forged = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, other)
    with pytest.raises(Unauthenticated) as error:
        oauth._oidc_login(
            NO_CONTEXT, PROVIDER, META, {"id_token": forged, "access_token": "at"}, "n"
        )
    assert error.value.code == "oauth_id_token_invalid"


def test_unverified_email_is_reported_as_such() -> None:
    login = oauth._oidc_login(NO_CONTEXT, PROVIDER, META, _id_token(email_verified=False), "n-123")
    assert login.email_verified is False
