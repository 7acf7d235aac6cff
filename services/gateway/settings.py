"""Settings of the gateway (on top of the shared ones)."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import BaseServiceSettings


class GatewaySettings(BaseServiceSettings):
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    # The address users reach us at; OAuth redirect URIs are built from it.
    public_url: str = "http://127.0.0.1:8000"
    # How long a validated token is trusted without asking auth again. Revocations clear
    # the cache at once through Redis; this is only the backstop if a message is lost.
    auth_cache_ttl_seconds: float = Field(30.0, ge=0, le=300)
    # JSON bodies larger than this are refused; uploads have their own streamed routes.
    max_request_bytes: int = Field(1_048_576, ge=1024)
    # Each file uploaded to a knowledge base (a zip counts as one file) may be this large.
    # Upload routes are exempt from max_request_bytes and stream to the object store.
    max_upload_bytes: int = Field(200 * 1024 * 1024, ge=1)
    # One upload request (all its files) is at most this: checked before the body is read
    # (Content-Length) and while it is read (services/gateway/upload_gate.py).
    max_upload_request_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    # Files in one knowledge-base upload request (a zip counts as one).
    max_files_per_upload: int = Field(100, ge=1)
    # Each user's uploads (datasets and documents, in the platform's store) together; 0: none.
    upload_quota_bytes: int = Field(20 * 1024 * 1024 * 1024, ge=0)
    # OpenAI-compatible routes: how long a resolved `model` -> server is reused, and how
    # long a generation may take before the gateway gives up on it.
    model_cache_ttl_seconds: float = Field(5.0, ge=0, le=300)
    inference_timeout_seconds: float = Field(600.0, ge=1)
    # Rate limits on the OpenAI-compatible generation routes (/v1/chat/completions,
    # /v1/completions), per credential (API key or signed-in session), shared by every
    # gateway through Redis. These are the platform's default; an API key may carry a lower
    # limit of its own. 0: no limit.
    rate_limit_requests_per_minute: int = Field(600, ge=0, le=100_000_000)
    rate_limit_tokens_per_minute: int = Field(0, ge=0, le=100_000_000)
    # Password sign-in and registration, throttled per source address before any password is
    # hashed (services/gateway/sign_in_throttle.py); counts decay over their window. 0: none.
    sign_in_failures_per_address: int = Field(20, ge=0)
    sign_in_failures_per_account: int = Field(5, ge=0)  # from one address, on one email
    sign_in_window_seconds: int = Field(900, ge=1)
    registrations_per_address: int = Field(20, ge=0)
    registration_window_seconds: int = Field(3600, ge=1)
    # Proxies whose X-Forwarded-For names the client (comma-separated addresses or "*"):
    # behind a load balancer, its address, or every client shares the balancer's.
    forwarded_allow_ips: str = "127.0.0.1"
    # Usage accounting: generations are added up here and sent to the deployer this often.
    usage_flush_seconds: float = Field(1.0, gt=0, le=60)

    @property
    def cookies_secure(self) -> bool:
        """Cookies are marked Secure (sent over https only) where users reach us by https."""
        return self.public_url.startswith("https://")
