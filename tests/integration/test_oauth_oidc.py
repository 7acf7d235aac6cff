"""Sign-in through a real OpenID Provider (oidc-provider), end to end through the gateway."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
import pytest

from tests.factories import SignedInUser, auth_headers, make_user, random_email
from tests.integration.conftest import OIDC_PROVIDER_NAME, Stack

# Linking identities to accounts by e-mail: unique rows (tests/README.md).
pytestmark = pytest.mark.both_databases

START = f"/api/v1/auth/oauth/{OIDC_PROVIDER_NAME}/start"


def _browser(stack: Stack) -> httpx.Client:
    """A cookie-keeping client that follows redirects like a browser."""
    return httpx.Client(base_url=stack.url, follow_redirects=True, timeout=30)


def _follow_to_callback(browser: httpx.Client, stack: Stack, response: httpx.Response) -> str:
    """Follow the provider's redirects by hand; return the callback URL it sends us to."""
    while True:
        location = urljoin(str(response.url), response.headers["location"])
        if location.startswith(stack.url):
            return location
        response = browser.get(location)


def _sign_in(
    stack: Stack, email: str, *, verified: bool = True, sub: str | None = None
) -> httpx.Response:
    stack.idp.set_account(sub or secrets.token_hex(8), email, email_verified=verified)
    with _browser(stack) as browser:
        return browser.get(START)


def test_providers_are_listed(client: httpx.Client) -> None:
    listed = client.get("/api/v1/auth/oauth/providers").json()
    assert listed["count"] == 1
    assert listed["data"][0] == {
        "name": OIDC_PROVIDER_NAME,
        "display_name": "Test IdP",
        "start_url": START,
    }


def test_start_redirects_with_pkce_state_and_nonce(stack: Stack, client: httpx.Client) -> None:
    response = client.get(START)
    assert response.status_code == 302
    location = urlparse(response.headers["location"])
    query = parse_qs(location.query)
    assert location.geturl().startswith(stack.idp.issuer)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) >= 43
    assert query["state"][0] and query["nonce"][0]
    assert query["state"] != query["nonce"]
    assert "fl_oauth_state" in response.headers["set-cookie"]
    assert "HttpOnly" in response.headers["set-cookie"]


def test_new_user_signs_in_with_a_verified_email(stack: Stack, client: httpx.Client) -> None:
    email, sub = random_email("oidc"), secrets.token_hex(8)
    response = _sign_in(stack, email, sub=sub)
    assert response.status_code == 200, response.text
    pair = response.json()
    assert pair["user"]["email"] == email
    me = client.get("/api/v1/me", headers=auth_headers(pair["access_token"]))
    assert me.json()["email"] == email
    # The same provider account signs in to the same user next time.
    again = _sign_in(stack, email, sub=sub)
    assert again.json()["user"]["id"] == pair["user"]["id"]


def test_links_to_an_existing_account_by_verified_email(stack: Stack, client: httpx.Client) -> None:
    existing: SignedInUser = make_user(client)
    response = _sign_in(stack, existing.email.upper())
    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == existing.id


def test_unverified_email_is_not_linked(stack: Stack, client: httpx.Client) -> None:
    existing = make_user(client)
    response = _sign_in(stack, existing.email, verified=False)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "oauth_email_unverified"


def test_callback_cannot_be_replayed(stack: Stack) -> None:
    stack.idp.set_account(secrets.token_hex(8), random_email("replay"))
    with httpx.Client(base_url=stack.url, timeout=30) as browser:
        callback = _follow_to_callback(browser, stack, browser.get(START))
        first = browser.get(callback)
        assert first.status_code == 200, first.text
        state = parse_qs(urlparse(callback).query)["state"][0]
        browser.cookies.set("fl_oauth_state", state, path="/api/v1/auth/oauth")
        second = browser.get(callback)
        assert second.status_code == 401
        assert second.json()["error"]["code"] == "oauth_state_invalid"


def test_callback_from_another_browser_is_refused(stack: Stack) -> None:
    stack.idp.set_account(secrets.token_hex(8), random_email("csrf"))
    with httpx.Client(base_url=stack.url, timeout=30) as victim_browser:
        callback = _follow_to_callback(victim_browser, stack, victim_browser.get(START))
    with httpx.Client(timeout=30) as attacker_browser:  # no state cookie
        response = attacker_browser.get(callback)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "oauth_state_invalid"


def test_code_with_another_logins_verifier_fails(stack: Stack) -> None:
    """PKCE: a code issued for one login cannot be redeemed by another login's state."""
    stack.idp.set_account(secrets.token_hex(8), random_email("pkce"))
    with httpx.Client(base_url=stack.url, timeout=30) as browser:
        first_start = browser.get(START)
        first_state = parse_qs(urlparse(first_start.headers["location"]).query)["state"][0]
        # A second login; its cookie replaces the first.
        callback = _follow_to_callback(browser, stack, browser.get(START))
        code = parse_qs(urlparse(callback).query)["code"][0]
        browser.cookies.set("fl_oauth_state", first_state, path="/api/v1/auth/oauth")
        response = browser.get(
            f"/api/v1/auth/oauth/{OIDC_PROVIDER_NAME}/callback",
            params={"code": code, "state": first_state},
        )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "oauth_exchange_failed"


def test_denied_at_the_provider(client: httpx.Client) -> None:
    response = client.get(
        f"/api/v1/auth/oauth/{OIDC_PROVIDER_NAME}/callback", params={"error": "access_denied"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "oauth_denied"


def test_unknown_provider(client: httpx.Client) -> None:
    response = client.get("/api/v1/auth/oauth/nosuch/start")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "oauth_provider_not_found"
