"""The model endpoint a knowledge-base query names is called only through the outbound guard:
refused before anything is sent, and again when it redirects inside our network."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from forgeline.v1 import rag_pb2

from services.common.errors import ForgelineError, InvalidInput
from services.common.outbound import OutboundPolicy, parse_networks
from services.rag.answering import Answerer


class _Redirecting(BaseHTTPRequestHandler):
    """A "public" endpoint that sends the chat request on to the metadata address."""

    def do_POST(self) -> None:
        self.send_response(307)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def redirecting() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def _answer(answerer: Answerer, base_url: str, **extra: object) -> str:
    request = rag_pb2.AnswerRequest(question="q", base_url=base_url, model="m", **extra)
    return "".join(answerer.stream(request, []))


def test_a_private_endpoint_is_refused_before_anything_is_sent() -> None:
    answerer = Answerer(timeout_seconds=5, policy=OutboundPolicy(purpose="model endpoint"))
    for url in ("http://127.0.0.1:8001/v1", "http://10.0.0.8/v1", "http://[::1]:8000/v1"):
        with pytest.raises(InvalidInput) as refused:
            _answer(answerer, url)
        assert refused.value.code == "endpoint_not_allowed", url
        assert "model endpoint" in refused.value.message


def test_a_redirect_into_our_network_is_refused(redirecting: int) -> None:
    # The far end counts as allowed (its network is named); where it redirects does not.
    policy = OutboundPolicy(allowed_networks=parse_networks("127.0.0.1/32"))
    answerer = Answerer(timeout_seconds=5, policy=policy)
    with pytest.raises(InvalidInput) as refused:
        _answer(answerer, f"http://127.0.0.1:{redirecting}/v1")
    assert refused.value.code == "endpoint_not_allowed"


def test_the_callers_own_deployment_resolved_by_the_gateway_is_not_guarded(
    redirecting: int,
) -> None:
    # platform_deployment: the gateway resolved the URL to the caller's deployment. The
    # guard lets it through (loopback), and no redirect is followed from it: this far end's
    # redirect is an answer that is not OpenAI's.
    answerer = Answerer(timeout_seconds=5, policy=OutboundPolicy())
    with pytest.raises(ForgelineError) as failed:
        _answer(answerer, f"http://127.0.0.1:{redirecting}/v1", platform_deployment=True)
    assert failed.value.code == "model_unavailable"
