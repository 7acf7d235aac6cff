"""Attacks on tokens, keys and inputs, each with the rejection a client must see."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from forgeline.v1 import auth_pb2, auth_pb2_grpc, rag_pb2, rag_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.grpc_client import sync_channel
from tests.factories import SignedInUser, auth_headers, make_api_key, make_user
from tests.integration.conftest import Stack

# Hostile input reaches the database: quoting, column sizes, counters (tests/README.md).
pytestmark = pytest.mark.both_databases


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def _signing_key(stack: object) -> object:
    path = Path(stack.platform.data_dir) / "auth" / "jwt_ed25519.pem"  # type: ignore[attr-defined]
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _assert_rejected(client: httpx.Client, token: str, code: str) -> None:
    response = client.get("/api/v1/me", headers=auth_headers(token))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_missing_credentials(client: httpx.Client) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_expired_token(stack: object, client: httpx.Client, user: SignedInUser) -> None:
    # Signed with the service's real key, so only the expiry can be the reason to refuse.
    claims = {
        **_claims(user.access_token),
        "iat": int(time.time()) - 3600,
        "exp": int(time.time()) - 60,
    }
    expired = jwt.encode(claims, _signing_key(stack), algorithm="EdDSA")  # type: ignore[arg-type]
    _assert_rejected(client, expired, "token_expired")


def test_tampered_token(client: httpx.Client, user: SignedInUser) -> None:
    other = make_user(client)
    header, _, signature = user.access_token.split(".")
    claims = {**_claims(user.access_token), "sub": other.id, "scope": "user admin"}
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    _assert_rejected(client, forged, "token_invalid")
    # A flipped bit in the signature as well.
    head, body, sig = user.access_token.split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    _assert_rejected(client, f"{head}.{body}.{flipped}", "token_invalid")


def test_alg_none(client: httpx.Client, user: SignedInUser) -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_claims(user.access_token)).encode())
    _assert_rejected(client, f"{header}.{body}.", "token_invalid")


def test_hmac_signed_with_the_public_key(
    stack: object, client: httpx.Client, user: SignedInUser
) -> None:
    """The classic HS/RS confusion: an HMAC whose secret is the server's public key."""
    public_pem = (
        _signing_key(stack)
        .public_key()
        .public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_claims(user.access_token)).encode())
    signature = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    _assert_rejected(client, f"{header}.{body}.{_b64(signature)}", "token_invalid")


def test_garbage_tokens(client: httpx.Client) -> None:
    for token in ("not-a-jwt", "a.b.c", "flk_nope", "flk_abcd1234_" + "x" * 43):
        response = client.get("/api/v1/me", headers=auth_headers(token))
        assert response.status_code == 401
        assert response.json()["error"]["code"] in {"token_invalid", "api_key_invalid"}


def test_reused_refresh_token_revokes_the_family(client: httpx.Client, user: SignedInUser) -> None:
    rotated = client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}).json()
    replay = client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "refresh_token_reused"
    # Everything issued in that session is dead now, including the legitimate newer pair.
    newer = client.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert newer.status_code == 401
    assert newer.json()["error"]["code"] == "session_revoked"
    _assert_rejected(client, rotated["access_token"], "session_revoked")
    _assert_rejected(client, user.access_token, "session_revoked")


def test_revoked_key_stops_at_once(client: httpx.Client, user: SignedInUser) -> None:
    created = make_api_key(client, user)
    # Warm the gateway's cache, then revoke: the cache must not keep the key alive.
    assert client.get("/api/v1/me", headers=auth_headers(created["key"])).status_code == 200
    assert (
        client.delete(f"/api/v1/api-keys/{created['id']}", headers=user.headers).status_code == 204
    )
    _assert_rejected(client, created["key"], "api_key_revoked")


def test_api_key_with_the_right_prefix_but_wrong_secret(
    client: httpx.Client, user: SignedInUser
) -> None:
    key = make_api_key(client, user)["key"]
    forged = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    _assert_rejected(client, forged, "api_key_invalid")


@pytest.mark.parametrize(
    "email",
    [
        "' OR '1'='1",
        "admin@example.com' --",
        "x@example.com; DROP TABLE auth_users; --",
        "\u0000@example.com",
    ],
)
def test_sql_ish_login_input(client: httpx.Client, email: str) -> None:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": "' OR 1=1 --"})
    assert response.status_code in {401, 422}
    assert response.json()["error"]["code"] in {"invalid_credentials", "invalid_request"}


def test_sql_ish_values_are_stored_verbatim(client: httpx.Client, user: SignedInUser) -> None:
    name = "'); DELETE FROM auth_api_keys; --"
    make_api_key(client, user, name=name)
    listed = client.get("/api/v1/api-keys", headers=user.headers).json()
    assert [k["name"] for k in listed["data"]] == [name]
    weird_id = client.delete("/api/v1/api-keys/1 OR 1=1", headers=user.headers)
    assert weird_id.status_code == 404
    assert weird_id.json()["error"]["code"] == "api_key_not_found"
    assert client.get("/api/v1/api-keys", headers=user.headers).json()["count"] == 1


def test_oversized_inputs(client: httpx.Client, user: SignedInUser) -> None:
    huge = client.post(
        "/api/v1/auth/register",
        content=b'{"email": "' + b"a" * 2_000_000 + b'@example.com", "password": "x"}',
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "payload_too_large"

    long_password = client.post(
        "/api/v1/auth/register", json={"email": "big@example.com", "password": "p" * 10_000}
    )
    assert long_password.status_code == 422
    assert long_password.json()["error"]["code"] == "invalid_request"

    long_email = client.post(
        "/api/v1/auth/login",
        json={"email": "e" * 1000 + "@example.com", "password": "whatever it is"},
    )
    assert long_email.status_code == 422

    long_name = client.post("/api/v1/api-keys", json={"name": "n" * 5000}, headers=user.headers)
    assert long_name.status_code == 422

    long_header = client.get("/api/v1/me", headers=auth_headers("x" * 10_000))
    assert long_header.status_code == 401


def test_chunked_body_over_the_limit(client: httpx.Client) -> None:
    def chunks():  # no Content-Length: the limit must hold while streaming
        for _ in range(40):
            yield b"x" * 65536

    response = client.post(
        "/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_malformed_json(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_deeply_nested_json_is_refused_in_words(client: httpx.Client, user: SignedInUser) -> None:
    # Hostile: a body of 200,000 nested arrays, well under the size limit; Python's JSON
    # parser recurses once per level and gave up with a 500.
    nested = b'{"model": "m", "messages": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    for path, headers in (
        ("/v1/chat/completions", user.headers),
        ("/api/v1/auth/login", {}),
        ("/api/v1/kbs", user.headers),
    ):
        response = client.post(
            path, content=nested, headers={**headers, "content-type": "application/json"}
        )
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"]["code"] == "invalid_request", path
        assert "nested" in response.json()["error"]["message"], path


def test_internal_services_refuse_callers_without_the_service_token(
    stack: Stack, client: httpx.Client, user: SignedInUser
) -> None:
    # Hostile: someone who can reach the auth service's port (any local user, a neighbour in
    # the VPC) mints an API key for another user, bypassing the gateway.
    env = stack.platform.env
    address = f"127.0.0.1:{env['AUTH_GRPC_PORT']}"
    request = auth_pb2.CreateApiKeyRequest(user_id=user.id, name="stolen")
    for metadata in ((), (("authorization", "Bearer guessed"),)):
        with grpc.insecure_channel(address) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.CreateApiKey(request, metadata=metadata, timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # A streaming call is refused the same way (the RAG service's Answer).
        rag = f"127.0.0.1:{env['RAG_GRPC_PORT']}"
        with grpc.insecure_channel(rag) as channel:
            answers = rag_pb2_grpc.RagServiceStub(channel).Answer(
                rag_pb2.AnswerRequest(owner_id=user.id), metadata=metadata, timeout=10
            )
            with pytest.raises(grpc.RpcError) as refused:
                list(answers)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert client.get("/api/v1/api-keys", headers=user.headers).json()["count"] == 0
    # Health checks stay open (the supervisor and load balancers use them), and the
    # installation's own token, kept in its data folder for its owner only, is accepted.
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    data_dir = Path(stack.platform.data_dir)
    assert data_dir.stat().st_mode & 0o077 == 0
    token_file = data_dir / "service.token"
    assert token_file.stat().st_mode & 0o077 == 0
    minted = auth_pb2_grpc.AuthServiceStub(
        sync_channel(address, token=token_file.read_text().strip())
    ).CreateApiKey(request, timeout=10)
    assert minted.key.name == "stolen"
