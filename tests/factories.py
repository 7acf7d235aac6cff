"""Factories that go through the real gateway and auth service: no hand-minted tokens."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx


def random_email(tag: str = "user") -> str:
    return f"{tag}-{secrets.token_hex(6)}@example.com"


def random_password() -> str:
    return f"long passphrase {secrets.token_hex(8)}"


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class SignedInUser:
    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return auth_headers(self.access_token)


def login(client: httpx.Client, email: str, password: str) -> dict[str, Any]:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def make_user(
    client: httpx.Client,
    *,
    email: str | None = None,
    password: str | None = None,
    setup_code: str = "",
) -> SignedInUser:
    """A signed-in account; with the instance's `setup_code`, its administrator."""
    email = email or random_email()
    password = password or random_password()
    body = {"email": email, "password": password}
    if setup_code:
        body["setup_code"] = setup_code
    response = client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    pair = login(client, email, password)
    return SignedInUser(
        pair["user"]["id"], email, password, pair["access_token"], pair["refresh_token"]
    )


def make_api_key(
    client: httpx.Client, user: SignedInUser, name: str = "test key"
) -> dict[str, Any]:
    response = client.post("/api/v1/api-keys", json={"name": name}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]
