"""Factories that go through the real gateway and auth service: no hand-minted tokens."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from typing import Any

import httpx


def random_email(tag: str = "user") -> str:
    return f"{tag}-{secrets.token_hex(6)}@example.com"


def random_password() -> str:
    return f"long passphrase {secrets.token_hex(8)}"


_addresses = itertools.count(secrets.randbelow(60_000))


def stranger_address() -> str:
    """A client address of its own (198.18.0.0/15, set aside for tests), for a request sent
    as if through the proxy the gateway trusts on loopback (X-Forwarded-For): throttling
    per address then counts this test's requests only."""
    n = next(_addresses) % 131_070 + 1
    return f"198.{18 + n // 65_536}.{n // 256 % 256}.{n % 256}"


def from_address(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


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
