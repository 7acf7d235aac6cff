"""The one guard for every outbound call the platform makes on a user's behalf.

A URL a user gives (a model endpoint, an attached bucket, an identity provider's discovery
document) could point inside our own network: other users' vLLM servers, the embedded object
store, Redis, Chroma, or a cloud metadata address. Checking the name when it is saved is not
enough: the name can resolve to a public address then and to 127.0.0.1 later (DNS rebinding),
and a public server can redirect to a private one. So the check sits where the connection is
made:

- the name is resolved once per request, every address it resolves to must be allowed, and
  the connection goes to that address (the Host header and TLS name stay the original name,
  so certificates are still verified against it);
- every redirect is a new request through the same transport, so it is checked again;
- private, loopback, shared (CGNAT), link-local (cloud metadata among them) and reserved
  addresses are refused unless the operator allows private ones for that use, or names the
  network in `OUTBOUND_ALLOWED_NETWORKS`. Link-local needs the explicit network: "private
  allowed" is for a MinIO or an Ollama beside a one-machine install, never the metadata API;
- timeouts bound every phase and a response body is cut at a size limit.

`GuardedTransport` / `AsyncGuardedTransport` plug into httpx (and so into the OpenAI client
and Authlib's httpx client); `guard_boto_client` routes a boto3 client's requests through it.
"""

from __future__ import annotations

import io
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from services.common.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_REDIRECTS = 5


class OutboundRefused(InvalidInput):
    """A user-given address the platform will not call (a stable code, a plain reason)."""


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]).split("%")[0] for info in infos]


def canonical(address: Address) -> Address:
    """An IPv4-mapped IPv6 address is its IPv4 address (::ffff:127.0.0.1 is loopback)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(value: str | Iterable[str]) -> tuple[Network, ...]:
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


@dataclass(frozen=True)
class OutboundPolicy:
    """What one kind of outbound call may reach."""

    # Private and loopback addresses (10/8, 192.168/16, 127/8, fc00::/7, ...) allowed.
    allow_private: bool = False
    # Networks allowed whatever they are (the operator's own, e.g. a VPC's 10.1.0.0/16).
    allowed_networks: tuple[Network, ...] = ()
    # (host, port) pairs that are ours and always refused, e.g. the platform's object store.
    refused_endpoints: frozenset[tuple[Address, int]] = frozenset()
    # Origins (scheme://host:port) that are ours and always allowed: the gateway's own /v1.
    trusted_origins: frozenset[str] = frozenset()
    purpose: str = "endpoint"  # words for the error message: "model endpoint", "bucket", ...
    # Said when a refused endpoint of ours is named (default: "one of the platform's own").
    own_endpoint_message: str = ""
    resolver: Resolver = field(default=system_resolver, compare=False)

    def allows(self, address: Address) -> bool:
        address = canonical(address)
        if any(address in network for network in self.allowed_networks):
            return True
        if address.is_link_local or address.is_multicast or address.is_unspecified:
            return False
        if address.is_global:
            return True
        return self.allow_private and (address.is_private or address.is_loopback)

    def resolve(self, host: str, port: int) -> str:
        """The address to connect to, checked; raises OutboundRefused."""
        try:
            literal: Address | None = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            answers = [str(literal)]
        else:
            try:
                answers = self.resolver(host, port)
            except OSError as error:
                raise OutboundRefused(
                    "endpoint_unreachable", f"The {self.purpose}'s host '{host}' does not resolve."
                ) from error
        if not answers:
            raise OutboundRefused(
                "endpoint_unreachable", f"The {self.purpose}'s host '{host}' does not resolve."
            )
        addresses = [canonical(ipaddress.ip_address(a)) for a in answers]
        for address in addresses:
            # A name that resolves to a public and a private address is refused as a whole:
            # which one the connection would get is not ours to choose.
            if (address, port) in self.refused_endpoints:
                raise OutboundRefused(
                    "endpoint_not_allowed",
                    self.own_endpoint_message
                    or f"That {self.purpose} is one of this platform's own servers.",
                )
            if not self.allows(address):
                raise OutboundRefused("endpoint_not_allowed", self._refusal())
        return str(addresses[0])

    def check_url(self, url: str) -> None:
        """Refuses a URL now (when it is saved), as a connection to it would be refused."""
        parts = _split(url, self.purpose)
        if _origin(parts) in self.trusted_origins:
            return
        self.resolve(parts.hostname or "", _port(parts, self.purpose))

    def _refusal(self) -> str:
        return (
            f"That {self.purpose} is a private, local or reserved address, which this "
            "platform does not call on a user's behalf. An administrator can allow a network "
            "with OUTBOUND_ALLOWED_NETWORKS."
        )


def policy_for(
    settings: Any,
    *,
    purpose: str,
    allow_private: bool,
    trusted_urls: Iterable[str] = (),
    refused_urls: Iterable[str | None] = (),
    own_endpoint_message: str = "",
) -> OutboundPolicy:
    """A policy from the operator's settings: `settings.outbound_allowed_networks`, the
    platform's own URLs that are always allowed (`trusted_urls`) or always refused."""
    refused: set[tuple[Address, int]] = set()
    for url in refused_urls:
        if url:
            parts = _split(url, purpose)
            port = _port(parts, purpose)
            try:
                answers = system_resolver(parts.hostname, port)
            except OSError:
                continue
            refused |= {(canonical(ipaddress.ip_address(a)), port) for a in answers}
            if any(a.is_loopback or a.is_unspecified for a, _ in refused):
                # 127.0.0.1, 0.0.0.0 and :: all reach a server listening on this machine.
                refused |= {
                    (ipaddress.ip_address(a), port) for a in ("127.0.0.1", "0.0.0.0", "::1", "::")
                }
    return OutboundPolicy(
        allow_private=allow_private,
        allowed_networks=parse_networks(settings.outbound_allowed_networks),
        refused_endpoints=frozenset(refused),
        trusted_origins=frozenset(origin_of(url) for url in trusted_urls),
        purpose=purpose,
        own_endpoint_message=own_endpoint_message,
    )


def _split(url: str, purpose: str) -> Any:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise OutboundRefused(
            "invalid_endpoint", f"The {purpose} must be an http:// or https:// URL with a host."
        )
    return parts


def _port(parts: Any, purpose: str) -> int:
    try:
        return int(parts.port or (443 if parts.scheme == "https" else 80))
    except ValueError as error:
        raise OutboundRefused("invalid_endpoint", f"The {purpose}'s port is not valid.") from error


def _origin(parts: Any) -> str:
    return f"{parts.scheme}://{parts.hostname}:{_port(parts, 'endpoint')}".lower()


def origin_of(url: str) -> str:
    return _origin(_split(url, "URL"))


def _pin(request: Any, address: str | None) -> None:
    """Connect to the checked address; the name stays in Host and in TLS (SNI, certificate)."""
    if address is None:
        return
    host = request.url.host
    if "Host" not in request.headers:
        request.headers["Host"] = request.url.netloc.decode("ascii")
    request.url = request.url.copy_with(host=address)
    if request.url.scheme == "https":
        request.extensions = {**request.extensions, "sni_hostname": host}


def _target(request: Any, policy: OutboundPolicy) -> tuple[str, int, bool]:
    url = request.url
    if url.scheme not in {"http", "https"}:
        raise OutboundRefused("invalid_endpoint", f"The {policy.purpose} must be http or https.")
    port = url.port or (443 if url.scheme == "https" else 80)
    trusted = f"{url.scheme}://{url.host}:{port}".lower() in policy.trusted_origins
    return url.host, port, trusted


def _too_large(limit: int, purpose: str) -> OutboundRefused:
    return OutboundRefused(
        "response_too_large", f"The {purpose} sent more than {limit // (1024 * 1024)} MiB."
    )


def _transports(h: Any) -> tuple[type, type]:
    """The guarded sync and async transports for one httpx flavour: `httpx` itself, or
    `httpx2`, the fork the OpenAI client is built on (same API, different classes)."""

    class CappedStream(h.SyncByteStream):  # type: ignore[misc]
        def __init__(self, inner: Any, limit: int, purpose: str) -> None:
            self.inner, self.limit, self.purpose = inner, limit, purpose

        def __iter__(self) -> Iterator[bytes]:
            seen = 0
            for chunk in self.inner:
                seen += len(chunk)
                if seen > self.limit:
                    raise _too_large(self.limit, self.purpose)
                yield chunk

        def close(self) -> None:
            self.inner.close()

    class AsyncCappedStream(h.AsyncByteStream):  # type: ignore[misc]
        def __init__(self, inner: Any, limit: int, purpose: str) -> None:
            self.inner, self.limit, self.purpose = inner, limit, purpose

        async def __aiter__(self) -> AsyncIterator[bytes]:
            seen = 0
            async for chunk in self.inner:
                seen += len(chunk)
                if seen > self.limit:
                    raise _too_large(self.limit, self.purpose)
                yield chunk

        async def aclose(self) -> None:
            await self.inner.aclose()

    class Transport(h.HTTPTransport):  # type: ignore[misc]
        def __init__(self, policy: OutboundPolicy, *, max_response_bytes: int) -> None:
            super().__init__(trust_env=False)
            self.policy, self.max_response_bytes = policy, max_response_bytes

        def handle_request(self, request: Any) -> Any:
            host, port, trusted = _target(request, self.policy)
            _pin(request, None if trusted else self.policy.resolve(host, port))
            response = super().handle_request(request)
            response.stream = CappedStream(
                response.stream, self.max_response_bytes, self.policy.purpose
            )
            return response

    class AsyncTransport(h.AsyncHTTPTransport):  # type: ignore[misc]
        def __init__(self, policy: OutboundPolicy, *, max_response_bytes: int) -> None:
            super().__init__(trust_env=False)
            self.policy, self.max_response_bytes = policy, max_response_bytes

        async def handle_async_request(self, request: Any) -> Any:
            host, port, trusted = _target(request, self.policy)
            # Resolving blocks; in a worker thread it does not stall the event loop.
            address = (
                None if trusted else await anyio.to_thread.run_sync(self.policy.resolve, host, port)
            )
            _pin(request, address)
            response = await super().handle_async_request(request)
            response.stream = AsyncCappedStream(
                response.stream, self.max_response_bytes, self.policy.purpose
            )
            return response

    return Transport, AsyncTransport


GuardedTransport, AsyncGuardedTransport = _transports(httpx)


def guarded_client(
    policy: OutboundPolicy,
    *,
    timeout: float | Any = DEFAULT_TIMEOUT_SECONDS,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    follow_redirects: bool = True,
    flavour: Any = httpx,
) -> Any:
    """An httpx client whose every request (redirects included) passes the policy.
    `flavour=httpx2` gives the client the OpenAI library takes as `http_client`."""
    transport, _ = _transports_of(flavour)
    return flavour.Client(
        transport=transport(policy, max_response_bytes=max_response_bytes),
        timeout=timeout,
        follow_redirects=follow_redirects,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,  # an environment proxy would connect for us, past the check
    )


def async_guarded_client(
    policy: OutboundPolicy,
    *,
    timeout: float | Any = DEFAULT_TIMEOUT_SECONDS,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    follow_redirects: bool = True,
    flavour: Any = httpx,
) -> Any:
    _, transport = _transports_of(flavour)
    return flavour.AsyncClient(
        transport=transport(policy, max_response_bytes=max_response_bytes),
        timeout=timeout,
        follow_redirects=follow_redirects,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,
    )


_TRANSPORTS: dict[Any, tuple[type, type]] = {httpx: (GuardedTransport, AsyncGuardedTransport)}


def _transports_of(flavour: Any) -> tuple[type, type]:
    if flavour not in _TRANSPORTS:
        _TRANSPORTS[flavour] = _transports(flavour)
    return _TRANSPORTS[flavour]


def guarded_transport(
    policy: OutboundPolicy,
    *,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    flavour: Any = httpx,
) -> Any:
    """The transport alone, for a client a library builds itself (Authlib's OAuth2Client)."""
    transport, _ = _transports_of(flavour)
    return transport(policy, max_response_bytes=max_response_bytes)


class _RawBody(io.BytesIO):
    """What botocore reads a response from (`stream()` for whole bodies, `read()` for
    streamed ones such as get_object's Body)."""

    def stream(self, amt: int = 64 * 1024, **_: Any) -> Iterator[bytes]:
        while chunk := self.read(amt):
            yield chunk


def guard_boto_client(
    client: Any,
    policy: OutboundPolicy,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> Any:
    """Sends every request of a boto3 client through the guard, so that the bucket's
    address is checked at each connection, not only when the bucket was attached.

    botocore lets a `before-send` handler answer a request itself (moto works the same
    way); this one answers it with the guarded httpx client. Redirects are not followed:
    S3 answers them as errors botocore understands.
    """
    from botocore.awsrequest import AWSResponse
    from botocore.exceptions import EndpointConnectionError

    http = guarded_client(
        policy, timeout=timeout, max_response_bytes=max_response_bytes, follow_redirects=False
    )

    def send(request: Any, **_: Any) -> AWSResponse:
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        try:
            response = http.request(
                request.method,
                request.url,
                headers={k: v for k, v in request.headers.items()},
                content=body if body is not None else b"",
            )
        except httpx.TransportError as error:
            raise EndpointConnectionError(endpoint_url=request.url, error=error) from error
        return AWSResponse(
            request.url, response.status_code, dict(response.headers), _RawBody(response.content)
        )

    client.meta.events.register_first("before-send", send)
    return client
