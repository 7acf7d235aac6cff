"""The outbound guard: which addresses a user-given URL may reach, checked at each
connection (a real HTTP server on loopback stands in for the far end)."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import httpx
import httpx2
import pytest

from services.common.outbound import (
    OutboundPolicy,
    OutboundRefused,
    guard_boto_client,
    guarded_client,
    parse_networks,
)

LOOPBACK_ONLY = parse_networks("127.0.0.1/32")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "0.0.0.0",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",  # shared (CGNAT) space: Kubernetes and cloud load balancers
        "169.254.169.254",  # AWS, GCP and Azure metadata
        "fd00:ec2::254",  # AWS metadata over IPv6
        "fe80::1",
        "224.0.0.1",
        "240.0.0.1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(OutboundRefused) as refused:
        OutboundPolicy().resolve(address, 80)
    assert refused.value.code == "endpoint_not_allowed"


def test_public_addresses_pass_and_private_ones_only_when_allowed() -> None:
    assert OutboundPolicy().resolve("93.184.216.34", 443) == "93.184.216.34"
    assert OutboundPolicy().resolve("2606:4700::1111", 443) == "2606:4700::1111"
    private = OutboundPolicy(allow_private=True)
    assert private.resolve("10.0.0.5", 80) == "10.0.0.5"
    assert private.resolve("127.0.0.1", 80) == "127.0.0.1"
    # "Private allowed" never opens the metadata API: only a named network does.
    with pytest.raises(OutboundRefused):
        private.resolve("169.254.169.254", 80)
    assert OutboundPolicy(allowed_networks=parse_networks("169.254.0.0/16")).resolve(
        "169.254.169.254", 80
    )


def test_a_name_with_any_private_answer_is_refused() -> None:
    policy = OutboundPolicy(resolver=lambda host, port: ["93.184.216.34", "127.0.0.1"])
    with pytest.raises(OutboundRefused):
        policy.resolve("mixed.example", 80)


def test_the_platforms_own_endpoints_are_refused_even_when_private_is_allowed() -> None:
    own = frozenset({(ipaddress.ip_address("127.0.0.1"), 8333)})
    policy = OutboundPolicy(allow_private=True, refused_endpoints=own)
    with pytest.raises(OutboundRefused):
        policy.resolve("127.0.0.1", 8333)
    with pytest.raises(OutboundRefused):
        policy.resolve("::ffff:127.0.0.1", 8333)
    assert policy.resolve("127.0.0.1", 9000) == "127.0.0.1"


def test_bad_urls_have_a_stable_code() -> None:
    for url in ("ftp://example.com/", "http:///nohost", "file:///etc/passwd", "http://h:99999/"):
        with pytest.raises(OutboundRefused) as refused:
            OutboundPolicy().check_url(url)
        assert refused.value.code == "invalid_endpoint", url


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", self.path.split("to=", 1)[1])
            self.end_headers()
            return
        body = (b"x" * 4096) if self.path == "/big" else self.headers["Host"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def far_end() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@pytest.mark.parametrize("flavour", [httpx, httpx2], ids=["httpx", "httpx2 (OpenAI's)"])
def test_the_connection_goes_to_the_checked_address_under_the_original_name(
    far_end: int, flavour: Any
) -> None:
    # The name resolves only through the policy's resolver: if the client resolved it again
    # itself, this would fail. The server still sees the original Host.
    policy = OutboundPolicy(
        allowed_networks=LOOPBACK_ONLY, resolver=lambda host, port: ["127.0.0.1"]
    )
    with guarded_client(policy, flavour=flavour) as client:
        response = client.get(f"http://models.example:{far_end}/")
    assert response.text == f"models.example:{far_end}"


def test_dns_rebinding_is_refused_at_the_next_connection(far_end: int) -> None:
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])
    policy = OutboundPolicy(allowed_networks=LOOPBACK_ONLY, resolver=lambda h, p: next(answers))
    with guarded_client(policy) as client:
        assert client.get(f"http://rebind.example:{far_end}/").status_code == 200
        with pytest.raises(OutboundRefused):
            client.get(f"http://rebind.example:{far_end}/")


def test_a_redirect_to_a_private_address_is_refused(far_end: int) -> None:
    policy = OutboundPolicy(allowed_networks=LOOPBACK_ONLY)
    with guarded_client(policy) as client:
        assert client.get(f"http://127.0.0.1:{far_end}/redirect?to=/").status_code == 200
        with pytest.raises(OutboundRefused):
            client.get(f"http://127.0.0.1:{far_end}/redirect?to=http://127.0.0.2:{far_end}/")
        with pytest.raises(OutboundRefused):
            client.get(f"http://127.0.0.1:{far_end}/redirect?to=http://169.254.169.254/latest/")


def test_a_response_over_the_size_limit_is_cut(far_end: int) -> None:
    policy = OutboundPolicy(allowed_networks=LOOPBACK_ONLY)
    with (
        guarded_client(policy, max_response_bytes=1000) as client,
        pytest.raises(OutboundRefused) as refused,
    ):
        client.get(f"http://127.0.0.1:{far_end}/big")
    assert refused.value.code == "response_too_large"


def test_a_boto_client_is_checked_at_every_request(far_end: int) -> None:
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    policy = OutboundPolicy(allowed_networks=LOOPBACK_ONLY, resolver=lambda h, p: next(answers))
    s3 = guard_boto_client(
        boto3.client(
            "s3",
            endpoint_url=f"http://bucket.example:{far_end}",
            region_name="us-east-1",
            aws_access_key_id="k",
            aws_secret_access_key="s",
        ),
        policy,
    )
    # The far end is not S3, but it answered through the guard (its body is the Host).
    got = s3.get_object(Bucket="b", Key="k")
    assert got["Body"].read() == f"bucket.example:{far_end}".encode()
    with pytest.raises(OutboundRefused):
        s3.get_object(Bucket="b", Key="k")
