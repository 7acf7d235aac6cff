"""One user's things are invisible to another; administrators manage users."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import SignedInUser, auth_headers, login, make_api_key, make_user

# Counting, paging and disabling users are queries of their own (tests/README.md).
pytestmark = pytest.mark.both_databases


def test_another_users_key_is_not_found(client: httpx.Client, user: SignedInUser) -> None:
    key = make_api_key(client, user)
    intruder = make_user(client)
    response = client.delete(f"/api/v1/api-keys/{key['id']}", headers=intruder.headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "api_key_not_found"
    assert client.get("/api/v1/api-keys", headers=intruder.headers).json() == {
        "data": [],
        "count": 0,
    }
    # The owner's key still works.
    assert client.get("/api/v1/me", headers=auth_headers(key["key"])).json()["id"] == user.id


def test_members_cannot_administer(client: httpx.Client, user: SignedInUser) -> None:
    listing = client.get("/api/v1/admin/users", headers=user.headers)
    assert listing.status_code == 403
    assert listing.json()["error"]["code"] == "admin_required"
    patch = client.patch(
        f"/api/v1/admin/users/{user.id}", json={"disabled": True}, headers=user.headers
    )
    assert patch.status_code == 403


def test_member_api_key_cannot_claim_admin_scope(client: httpx.Client, user: SignedInUser) -> None:
    response = client.post(
        "/api/v1/api-keys", json={"name": "sneaky", "scopes": ["admin"]}, headers=user.headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_scopes"


def test_a_key_cannot_mint_a_key_beyond_its_own_scope_or_limits(
    stack: object, client: httpx.Client
) -> None:
    # Hostile: an administrator hands out a `user`-scoped, rate-limited key; whoever holds it
    # tries to turn it into an admin key, or into one without its limits.
    admin = stack.admin  # type: ignore[attr-defined]
    limited = client.post(
        "/api/v1/api-keys",
        json={"name": "ci", "scopes": ["user"], "requests_per_minute": 5, "tokens_per_minute": 500},
        headers=admin.headers,
    )
    assert limited.status_code == 201, limited.text
    held = auth_headers(limited.json()["key"])
    for body, code in (
        ({"name": "escalated", "scopes": ["admin"]}, "invalid_scopes"),
        ({"name": "escalated", "scopes": ["user", "admin"]}, "invalid_scopes"),
        ({"name": "unlimited", "scopes": ["user"]}, "rate_limit_too_high"),
        ({"name": "faster", "scopes": ["user"], "requests_per_minute": 6}, "rate_limit_too_high"),
        (
            {"name": "hungrier", "requests_per_minute": 5, "tokens_per_minute": 501},
            "rate_limit_too_high",
        ),
    ):
        refused = client.post("/api/v1/api-keys", json=body, headers=held)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["error"]["code"] == code, body
    # Within its scope and limits it may: no scopes named means its own, not the user's.
    narrower = client.post(
        "/api/v1/api-keys",
        json={"name": "narrower", "requests_per_minute": 2, "tokens_per_minute": 500},
        headers=held,
    )
    assert narrower.status_code == 201, narrower.text
    assert narrower.json()["scopes"] == ["user"]
    assert narrower.json()["requests_per_minute"] == 2
    # The administrator's own session still creates admin keys.
    admin_key = client.post(
        "/api/v1/api-keys", json={"name": "ops", "scopes": ["admin"]}, headers=admin.headers
    )
    assert admin_key.status_code == 201, admin_key.text


def test_admin_lists_users(stack: object, client: httpx.Client, user: SignedInUser) -> None:
    admin = stack.admin  # type: ignore[attr-defined]
    page = client.get("/api/v1/admin/users", params={"limit": 200}, headers=admin.headers)
    assert page.status_code == 200
    emails = {u["email"] for u in page.json()["data"]}
    assert {admin.email, user.email} <= emails
    assert page.json()["count"] >= 2
    assert "password" not in page.text


def test_admin_disables_a_user_everywhere_at_once(stack: object, client: httpx.Client) -> None:
    admin = stack.admin  # type: ignore[attr-defined]
    member = make_user(client)
    key = make_api_key(client, member)["key"]
    # Warm the gateway cache for both credentials first.
    assert client.get("/api/v1/me", headers=member.headers).status_code == 200
    assert client.get("/api/v1/me", headers=auth_headers(key)).status_code == 200

    disabled = client.patch(
        f"/api/v1/admin/users/{member.id}", json={"disabled": True}, headers=admin.headers
    )
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True

    for token, code in ((member.access_token, "session_revoked"), (key, "account_disabled")):
        response = client.get("/api/v1/me", headers=auth_headers(token))
        assert response.status_code == 401
        assert response.json()["error"]["code"] == code
    relogin = client.post(
        "/api/v1/auth/login", json={"email": member.email, "password": member.password}
    )
    assert relogin.status_code == 403
    assert relogin.json()["error"]["code"] == "account_disabled"

    enabled = client.patch(
        f"/api/v1/admin/users/{member.id}", json={"disabled": False}, headers=admin.headers
    )
    assert enabled.json()["disabled"] is False
    assert login(client, member.email, member.password)["user"]["id"] == member.id


def test_admin_cannot_disable_themselves(stack: object, client: httpx.Client) -> None:
    admin = stack.admin  # type: ignore[attr-defined]
    response = client.patch(
        f"/api/v1/admin/users/{admin.id}", json={"disabled": True}, headers=admin.headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "cannot_disable_self"


def test_unknown_user_is_not_found(stack: object, client: httpx.Client) -> None:
    admin = stack.admin  # type: ignore[attr-defined]
    response = client.patch(
        "/api/v1/admin/users/0123456789abcdef", json={"disabled": True}, headers=admin.headers
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "user_not_found"
