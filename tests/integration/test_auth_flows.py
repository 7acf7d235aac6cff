"""The account life cycle as a user or integrator drives it over REST."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import SignedInUser, auth_headers, login, make_api_key, make_user, random_email

# Accounts, sessions, refresh-token families and keys: unique rows and races (tests/README.md).
pytestmark = pytest.mark.both_databases


def test_register_login_me(client: httpx.Client) -> None:
    email = random_email()
    created = client.post(
        "/api/v1/auth/register", json={"email": email.upper(), "password": "a long passphrase 123"}
    )
    assert created.status_code == 201
    assert created.json()["email"] == email  # normalised to lower case
    assert created.json()["role"] == "member"
    assert "password" not in created.text

    pair = login(client, email, "a long passphrase 123")
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] > 0
    me = client.get("/api/v1/me", headers=auth_headers(pair["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == email


def test_first_account_is_admin(stack: object, client: httpx.Client) -> None:
    admin = stack.admin  # type: ignore[attr-defined]
    me = client.get("/api/v1/me", headers=admin.headers)
    assert me.json()["role"] == "admin"


def test_duplicate_email_is_a_conflict(client: httpx.Client, user: SignedInUser) -> None:
    again = client.post(
        "/api/v1/auth/register", json={"email": user.email, "password": "another passphrase 1"}
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "email_taken"


def test_password_policy(client: httpx.Client) -> None:
    email = random_email("policy")
    for password, fragment in [
        ("short", "at least 12"),
        ("aaaaaaaaaaaaaaaa", "too easy"),
        (f"{email.split('@')[0]}-secret!", "email name"),
    ]:
        response = client.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "weak_password"
        assert fragment in response.json()["error"]["message"]


def test_wrong_password_and_unknown_email_look_the_same(
    client: httpx.Client, user: SignedInUser
) -> None:
    wrong = client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "not the password"}
    )
    unknown = client.post(
        "/api/v1/auth/login", json={"email": random_email(), "password": "not the password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"


def test_refresh_rotates_the_token(client: httpx.Client, user: SignedInUser) -> None:
    first = client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != user.refresh_token
    assert (
        client.get("/api/v1/me", headers=auth_headers(rotated["access_token"])).status_code == 200
    )
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert second.status_code == 200


def test_logout_ends_the_session(client: httpx.Client, user: SignedInUser) -> None:
    assert client.get("/api/v1/me", headers=user.headers).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=user.headers).status_code == 204
    after = client.get("/api/v1/me", headers=user.headers)
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "session_revoked"
    refresh = client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert refresh.status_code == 401
    assert refresh.json()["error"]["code"] == "session_revoked"
    # Other sessions of the same user carry on.
    other = login(client, user.email, user.password)
    assert client.get("/api/v1/me", headers=auth_headers(other["access_token"])).status_code == 200


def test_api_key_life_cycle(client: httpx.Client, user: SignedInUser) -> None:
    created = make_api_key(client, user, name="nightly export")
    secret = created["key"]
    assert secret.startswith("flk_") and secret.startswith(created["prefix"])
    assert created["last_used_at"] is None

    me = client.get("/api/v1/me", headers=auth_headers(secret))
    assert me.status_code == 200 and me.json()["id"] == user.id

    listed = client.get("/api/v1/api-keys", headers=user.headers).json()
    assert listed["count"] == 1
    [key] = listed["data"]
    assert key["name"] == "nightly export"
    assert "key" not in key  # shown once, never again
    assert secret not in client.get("/api/v1/api-keys", headers=user.headers).text
    assert key["last_used_at"] is not None

    assert client.delete(f"/api/v1/api-keys/{key['id']}", headers=user.headers).status_code == 204
    revoked = client.get("/api/v1/me", headers=auth_headers(secret))
    assert revoked.status_code == 401
    assert revoked.json()["error"]["code"] == "api_key_revoked"
    assert client.get("/api/v1/api-keys", headers=user.headers).json()["data"][0]["revoked_at"]


def test_logout_with_an_api_key_is_refused(client: httpx.Client, user: SignedInUser) -> None:
    secret = make_api_key(client, user)["key"]
    response = client.post("/api/v1/auth/logout", headers=auth_headers(secret))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "logout_needs_session"


def test_openapi_is_published(client: httpx.Client) -> None:
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in ("/api/v1/auth/login", "/api/v1/me", "/api/v1/api-keys", "/api/v1/admin/users"):
        assert path in paths
    assert client.get("/docs").status_code == 200


def test_health_needs_no_credentials(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_unknown_route_uses_the_error_envelope(client: httpx.Client) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_users_are_distinct(client: httpx.Client) -> None:
    a, b = make_user(client), make_user(client)
    assert client.get("/api/v1/me", headers=a.headers).json()["id"] == a.id
    assert client.get("/api/v1/me", headers=b.headers).json()["id"] == b.id
