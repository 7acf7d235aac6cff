"""The web client's refresh token lives in an HttpOnly, SameSite=Strict cookie on the refresh
route, never in a body or storage a page script can read (a script injected into the page
could otherwise keep the session for a month). Integrators keep getting it in the body."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlparse

import httpx

from services.gateway.web import OAUTH_PAGE
from tests.factories import SignedInUser, auth_headers, random_email
from tests.integration.conftest import OIDC_PROVIDER_NAME, Stack

COOKIE = "fl_refresh"
# What the web client sends to ask for the cookie. A page on another site cannot add a header
# to a request without a CORS preflight, which the gateway never grants.
AS_BROWSER = {"X-Refresh-Cookie": "1"}
REFRESH_PATH = "/api/v1/auth/refresh"


def _refresh_cookie(response: httpx.Response) -> dict[str, str]:
    """The attributes of the refresh cookie the response sets (lower-cased names)."""
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE + "=")]
    first, *rest = header.split(";")
    attributes = {"value": first.split("=", 1)[1]}
    for part in rest:
        name, _, value = part.strip().partition("=")
        attributes[name.lower()] = value
    return attributes


def _sign_in_as_browser(browser: httpx.Client, user: SignedInUser) -> httpx.Response:
    signed_in = browser.post(
        "/api/v1/auth/login",
        json={"email": user.email, "password": user.password},
        headers=AS_BROWSER,
    )
    assert signed_in.status_code == 200, signed_in.text
    return signed_in


def test_browser_sign_in_keeps_the_refresh_token_from_scripts(
    stack: Stack, user: SignedInUser
) -> None:
    with httpx.Client(base_url=stack.url, timeout=30) as browser:
        signed_in = _sign_in_as_browser(browser, user)
        assert signed_in.json()["refresh_token"] is None
        assert "flr_" not in signed_in.text
        cookie = _refresh_cookie(signed_in)
        assert cookie["value"].startswith("flr_")
        assert "httponly" in cookie
        assert cookie["samesite"].lower() == "strict"
        assert cookie["path"] == REFRESH_PATH
        assert int(cookie["max-age"]) > 86_400  # outlives the browser being closed
        assert "secure" not in cookie  # plain http here; https public URLs get Secure

        # The cookie alone, as a forged form post from another site would send it, is refused.
        forged = browser.post(REFRESH_PATH, json={})
        assert forged.status_code == 401
        assert forged.json()["error"]["code"] == "refresh_token_missing"

        refreshed = browser.post(REFRESH_PATH, json={}, headers=AS_BROWSER)
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["refresh_token"] is None
        me = browser.get("/api/v1/me", headers=auth_headers(refreshed.json()["access_token"]))
        assert me.status_code == 200 and me.json()["email"] == user.email
        rotated = _refresh_cookie(refreshed)
        assert rotated["value"] != cookie["value"]

    # The cookie it replaced is spent: a stolen copy played back ends the whole session.
    with httpx.Client(base_url=stack.url, timeout=30) as thief:
        replay = thief.post(
            REFRESH_PATH, json={}, headers=AS_BROWSER, cookies={COOKIE: cookie["value"]}
        )
        assert replay.status_code == 401
        assert replay.json()["error"]["code"] == "refresh_token_reused"


def test_sign_out_clears_the_refresh_cookie(stack: Stack, user: SignedInUser) -> None:
    with httpx.Client(base_url=stack.url, timeout=30) as browser:
        signed_in = _sign_in_as_browser(browser, user)
        value = _refresh_cookie(signed_in)["value"]
        out = browser.post(
            "/api/v1/auth/logout",
            headers={**auth_headers(signed_in.json()["access_token"]), **AS_BROWSER},
        )
        assert out.status_code == 204
        cleared = _refresh_cookie(out)
        assert cleared["value"] in ("", '""')
        assert cleared["max-age"] == "0" and cleared["path"] == REFRESH_PATH
        after = browser.post(REFRESH_PATH, json={}, headers=AS_BROWSER, cookies={COOKIE: value})
        assert after.status_code == 401
        assert after.json()["error"]["code"] == "session_revoked"


def test_integrators_still_get_the_refresh_token_in_the_body(
    client: httpx.Client, user: SignedInUser
) -> None:
    assert user.refresh_token.startswith("flr_")
    refreshed = client.post(REFRESH_PATH, json={"refresh_token": user.refresh_token})
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"].startswith("flr_")
    assert not [h for h in refreshed.headers.get_list("set-cookie") if h.startswith(COOKIE)]
    # No token at all is a clear refusal, not a validation error.
    missing = client.post(REFRESH_PATH, json={})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "refresh_token_missing"


def test_provider_sign_in_in_a_browser_sets_the_cookie_not_the_fragment(stack: Stack) -> None:
    email = random_email("oidc-cookie")
    stack.idp.set_account(secrets.token_hex(8), email, email_verified=True)
    with httpx.Client(
        base_url=stack.url, follow_redirects=True, timeout=30, headers={"accept": "text/html"}
    ) as browser:
        landed = browser.get(f"/api/v1/auth/oauth/{OIDC_PROVIDER_NAME}/start")
    assert landed.url.path == OAUTH_PAGE
    [callback] = [r for r in landed.history if r.url.path.endswith("/callback")]
    assert callback.status_code == 303
    fragment = parse_qs(urlparse(callback.headers["location"]).fragment)
    assert fragment["access_token"] and "refresh_token" not in fragment
    assert "flr_" not in callback.headers["location"]
    cookie = _refresh_cookie(callback)
    assert cookie["value"].startswith("flr_") and "httponly" in cookie
    assert cookie["samesite"].lower() == "strict" and cookie["path"] == REFRESH_PATH
    refreshed = httpx.post(
        stack.url + REFRESH_PATH,
        json={},
        headers=AS_BROWSER,
        cookies={COOKIE: cookie["value"]},
        timeout=30,
    )
    assert refreshed.status_code == 200 and refreshed.json()["user"]["email"] == email
