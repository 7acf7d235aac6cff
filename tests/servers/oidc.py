"""A real OpenID Provider (the certified npm `oidc-provider`) for the integration tests.

`run_oidc_provider` starts `tests/integration/oidc_provider/provider.mjs` with Node on a free
port, with one confidential client. The provider logs in whichever account the test last set
with `OidcProvider.set_account` and consents to every requested scope on its own, so following
the redirects from the authorization endpoint ends at `redirect_uri?code=...&state=...` with
no HTML in between.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers import free_port, wait_until

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "integration" / "oidc_provider"
START_TIMEOUT = 30.0
STOP_GRACE = 5.0
NPM_CI_TIMEOUT = 300.0


@dataclass(frozen=True)
class OidcProvider:
    issuer: str
    discovery_url: str
    log_path: Path

    def set_account(self, sub: str, email: str, email_verified: bool = True) -> None:
        """Make `sub` the account the next authorization request logs in.

        This also ends every session at the provider, so a client that kept the cookies of an
        earlier login still logs in this account.
        """
        response = httpx.post(
            f"{self.issuer}/_test/account",
            json={"sub": sub, "email": email, "email_verified": email_verified},
            timeout=10,
        )
        if response.status_code != 204:
            raise RuntimeError(
                f"OIDC provider refused the test account: {response.status_code} {response.text}"
            )

    def log_tail(self, lines: int = 40) -> str:
        """The end of the provider's stdout/stderr, for assertion messages."""
        return _log_tail(self.log_path, lines)


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _ensure_node_modules() -> None:
    if (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH: it is needed to install the test OIDC provider")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=PROVIDER_DIR,
        capture_output=True,
        text=True,
        timeout=NPM_CI_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"npm ci failed in {PROVIDER_DIR} (exit {result.returncode}):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def run_oidc_provider(
    *, client_id: str, client_secret: str, redirect_uris: list[str]
) -> Iterator[OidcProvider]:
    """Start the test OpenID Provider; yield its issuer; stop it (and its process group) on exit."""
    if not redirect_uris:
        raise ValueError("at least one redirect URI is needed")
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH: it is needed to run the test OIDC provider")
    _ensure_node_modules()

    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="forgeline-oidc-") as tmp:
        log_path = Path(tmp) / "oidc-provider.log"
        provider = OidcProvider(
            issuer=issuer,
            discovery_url=f"{issuer}/.well-known/openid-configuration",
            log_path=log_path,
        )
        env = {
            **os.environ,
            "OIDC_PORT": str(port),
            "OIDC_CLIENT_ID": client_id,
            "OIDC_CLIENT_SECRET": client_secret,
            "OIDC_REDIRECT_URIS": ",".join(redirect_uris),
        }
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [node, "provider.mjs"],
                cwd=PROVIDER_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:

            def discovery_ok() -> bool:
                return httpx.get(provider.discovery_url, timeout=2).status_code == 200

            try:
                wait_until(
                    discovery_ok,
                    timeout=START_TIMEOUT,
                    what=f"OIDC provider at {issuer}",
                    alive=lambda: proc.poll() is None,
                )
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(
                    f"{exc} (exit code {proc.poll()}); log tail:\n{_log_tail(log_path)}"
                ) from exc
            yield provider
        finally:
            _stop(proc)
