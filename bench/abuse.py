"""Every hostile request of issue 14 that is fixed, sent to a running platform.

Starts the platform as `make run` does (default settings, its own ports and data folder),
makes its administrator from the setup code and a victim with data (a knowledge base with a
document, an API key), then sends each probe: what a hostile user or local process would
send. A probe counts as refused when the platform answers the way the fix says (a code, a
401, a download instead of a page); any 5xx from the gateway counts as a server error;
after all probes the victim's data is checked (`data_lost` counts what is missing).

    .venv/bin/python -m bench.abuse

The last line printed is one JSON object: probes, refused_as_expected, server_errors,
data_lost, and each probe's verdict. The goal: all refused, 0 server errors, 0 data lost.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import grpc
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import redis
from forgeline.v1 import auth_pb2, auth_pb2_grpc

from tests.factories import (
    from_address,
    make_api_key,
    make_user,
    random_email,
    stranger_address,
)
from tests.servers.platform import Platform, platform_env, run_platform

Probe = Callable[[], bool]


class Abuse:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.env = platform.env
        self.server_errors: list[str] = []
        self.client = httpx.Client(
            base_url=platform.url,
            timeout=60,
            event_hooks={"response": [self._count_server_error]},
        )

    def _count_server_error(self, response: httpx.Response) -> None:
        if response.status_code >= 500:
            self.server_errors.append(f"{response.request.method} {response.request.url.path}")

    def code(self, response: httpx.Response) -> str:
        try:
            return str(response.json()["error"]["code"])
        except (ValueError, KeyError, TypeError):
            return ""

    # --- set-up: the administrator, a victim with data, an intruder ------------------------

    def set_up(self) -> None:
        # Before anyone: registering first must not make an administrator (probe 1).
        self.first = make_user(self.client)
        self.used_setup_code = self.platform.setup_code()
        self.admin = make_user(self.client, setup_code=self.used_setup_code)
        self.victim = make_user(self.client)
        self.intruder = make_user(self.client)
        kb = self.client.post("/api/v1/kbs", json={"name": "plans"}, headers=self.victim.headers)
        self.victim_kb = kb.json()["id"]
        self.client.post(
            f"/api/v1/kbs/{self.victim_kb}/documents",
            files=[("files", ("plan.txt", b"The launch is on a Tuesday."))],
            headers=self.victim.headers,
        ).raise_for_status()
        self.victim_key = make_api_key(self.client, self.victim, name="victim key")["id"]
        self.intruder_kb = self.client.post(
            "/api/v1/kbs", json={"name": "mine"}, headers=self.intruder.headers
        ).json()["id"]

    # --- probes ------------------------------------------------------------------------------

    def first_registrant_is_not_admin(self) -> bool:
        me = self.client.get("/api/v1/me", headers=self.first.headers).json()
        return bool(me["role"] == "member")

    def used_setup_code_is_refused(self) -> bool:
        answer = self.client.post(
            "/api/v1/auth/register",
            json={
                "email": random_email(),
                "password": "a long passphrase indeed",
                "setup_code": self.used_setup_code,
            },
        )
        return answer.status_code == 403 and self.code(answer) == "invalid_setup_code"

    def ssrf_to_the_platforms_servers(self) -> bool:
        targets = [
            f"http://127.0.0.1:{self.env['EMBEDDED_REDIS_PORT']}/v1",
            f"http://localhost:{self.env['EMBEDDED_CHROMA_PORT']}/v1",
            f"http://[::ffff:127.0.0.1]:{self.env['EMBEDDED_S3_PORT']}/v1",
            "http://169.254.169.254/latest/meta-data/iam",
        ]
        for base_url in targets:
            answer = self.client.post(
                f"/api/v1/kbs/{self.intruder_kb}/query",
                json={"question": "x", "model": {"base_url": base_url, "model": "m"}},
                headers=self.intruder.headers,
            )
            if self.code(answer) != "endpoint_not_allowed":
                return False
        return True

    def bucket_on_the_platforms_own_store(self) -> bool:
        answer = self.client.post(
            "/api/v1/kbs",
            json={
                "name": "theirs",
                "external_bucket": {
                    "bucket": "forgeline",
                    "endpoint_url": f"http://127.0.0.1:{self.env['EMBEDDED_S3_PORT']}",
                    "access_key_id": "AKIAGUESS",
                    "secret_access_key": "guess",
                },
            },
            headers=self.intruder.headers,
        )
        return self.code(answer) == "endpoint_not_allowed"

    def grpc_without_the_service_token(self) -> bool:
        channel = grpc.insecure_channel(f"127.0.0.1:{self.env['AUTH_GRPC_PORT']}")
        try:
            auth_pb2_grpc.AuthServiceStub(channel).CreateApiKey(
                auth_pb2.CreateApiKeyRequest(user_id=self.victim.id, name="stolen"), timeout=10
            )
        except grpc.RpcError as error:
            return bool(error.code() == grpc.StatusCode.UNAUTHENTICATED)
        finally:
            channel.close()
        return False

    def valkey_without_its_password(self) -> bool:
        try:
            redis.Redis(port=int(self.env["EMBEDDED_REDIS_PORT"]), socket_timeout=5).ping()
        except redis.AuthenticationError:
            return True
        return False

    def object_store_without_credentials(self) -> bool:
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.env['EMBEDDED_S3_PORT']}",
            aws_access_key_id="anonymous",
            aws_secret_access_key="guess",  # noqa: S106 (a wrong one, on purpose)
            region_name="us-east-1",
        )
        try:
            s3.list_objects_v2(Bucket="forgeline")
        except Exception:
            return True
        return False

    def upload_without_a_credential(self) -> bool:
        answer = self.client.post(
            "/api/v1/datasets", files={"file": ("big.jsonl", b"{}\n" * 2_000_000)}
        )
        return answer.status_code == 401

    def another_tenants_knowledge_base(self) -> bool:
        path = f"/api/v1/kbs/{self.victim_kb}"
        owner = self.client.get(path, headers=self.victim.headers)
        intruder = self.client.get(path, headers=self.intruder.headers)
        return owner.status_code == 200 and intruder.status_code == 404

    def key_scope_escalation(self) -> bool:
        held = make_api_key(self.client, self.intruder, name="held")["key"]
        answer = self.client.post(
            "/api/v1/api-keys",
            json={"name": "escalated", "scopes": ["admin"]},
            headers={"Authorization": f"Bearer {held}"},
        )
        return answer.status_code in (403, 422)

    def guessing_tells_nothing_and_locks_nobody(self) -> bool:
        def attempts(address: str, email: str) -> list[tuple[int, str]]:
            seen = []
            for _ in range(7):
                answer = self.client.post(
                    "/api/v1/auth/login",
                    json={"email": email, "password": "a guess"},
                    headers=from_address(address),
                )
                seen.append((answer.status_code, self.code(answer)))
            return seen

        alike = attempts(stranger_address(), self.victim.email) == attempts(
            stranger_address(), random_email()
        )
        owner = self.client.post(
            "/api/v1/auth/login",
            json={"email": self.victim.email, "password": self.victim.password},
        )
        return alike and owner.status_code == 200

    def refresh_token_out_of_scripts_reach(self) -> bool:
        """The web client's sign-in leaves no refresh token in what a page script reads."""
        with httpx.Client(base_url=self.platform.url, timeout=60) as browser:
            answer = self._browser_sign_in(browser)
        cookie = answer.headers.get("set-cookie", "")
        return (
            "flr_" not in answer.text
            and cookie.startswith("fl_refresh=flr_")
            and "HttpOnly" in cookie
            and "SameSite=strict" in cookie
        )

    def forged_cross_site_refresh(self) -> bool:
        """A form post from another site carries the cookie (in an old browser) but cannot
        add the header: no new tokens for it."""
        with httpx.Client(base_url=self.platform.url, timeout=60) as browser:
            self._browser_sign_in(browser)
            forged = browser.post(
                "/api/v1/auth/refresh",
                data={"refresh_token": ""},
                headers={"origin": "https://attacker.example"},
            )
        return forged.status_code in (401, 422) and "access_token" not in forged.text

    def _browser_sign_in(self, browser: httpx.Client) -> httpx.Response:
        answer = browser.post(
            "/api/v1/auth/login",
            json={"email": self.intruder.email, "password": self.intruder.password},
            headers={"X-Refresh-Cookie": "1"},
        )
        self._count_server_error(answer)
        return answer

    def deeply_nested_json(self) -> bool:
        nested = "[" * 10_000 + "]" * 10_000
        answer = self.client.post(
            "/v1/chat/completions",
            content=nested,
            headers={**self.intruder.headers, "content-type": "application/json"},
        )
        return answer.status_code == 422

    def stored_html_opens_as_a_download(self) -> bool:
        stored = self.client.post(
            f"/api/v1/kbs/{self.intruder_kb}/documents",
            files=[("files", ("page.html", b"<script>alert(document.cookie)</script>"))],
            headers=self.intruder.headers,
        ).json()["data"][0]
        opened = self.client.get(
            f"/api/v1/kbs/{self.intruder_kb}/documents/{stored['document_id']}/file",
            headers=self.intruder.headers,
        )
        return opened.headers.get("content-disposition", "").startswith("attachment;") and (
            opened.headers.get("x-content-type-options") == "nosniff"
        )

    def parquet_bomb(self) -> bool:
        schema = pa.schema([("instruction", pa.string()), ("output", pa.string())])
        buffer = io.BytesIO()
        with pq.ParquetWriter(buffer, schema, compression="zstd") as writer:
            row = pa.table({"instruction": ["a" * 64 * 2**20], "output": ["b"]}, schema=schema)
            for _ in range(48):  # 3 GiB once read, from about 120 KiB
                writer.write_table(row)
        created = self.client.post(
            "/api/v1/datasets",
            files={"file": ("bomb.parquet", buffer.getvalue())},
            headers=self.intruder.headers,
        ).json()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            dataset = self.client.get(
                f"/api/v1/datasets/{created['id']}", headers=self.intruder.headers
            ).json()
            if dataset["state"] != "inspecting":
                return bool(dataset.get("failure_code") == "inspection_out_of_memory")
            time.sleep(1)
        return False

    # --- after ---------------------------------------------------------------------------------

    def data_lost(self) -> list[str]:
        lost = []
        docs = self.client.get(
            f"/api/v1/kbs/{self.victim_kb}/documents", headers=self.victim.headers
        )
        if docs.status_code != 200 or not docs.json()["data"]:
            lost.append("victim's document")
        keys = self.client.get("/api/v1/api-keys", headers=self.victim.headers).json()["data"]
        if not any(k["id"] == self.victim_key and not k.get("revoked_at") for k in keys):
            lost.append("victim's API key")
        return lost


def main() -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="forgeline-abuse-") as tmp:
        data_dir = Path(tmp) / "platform"
        with run_platform(data_dir, platform_env(data_dir)) as platform:
            abuse = Abuse(platform)
            abuse.set_up()
            probes: dict[str, Probe] = {
                name: getattr(abuse, name)
                for name in (
                    "first_registrant_is_not_admin",
                    "used_setup_code_is_refused",
                    "ssrf_to_the_platforms_servers",
                    "bucket_on_the_platforms_own_store",
                    "grpc_without_the_service_token",
                    "valkey_without_its_password",
                    "object_store_without_credentials",
                    "upload_without_a_credential",
                    "another_tenants_knowledge_base",
                    "key_scope_escalation",
                    "guessing_tells_nothing_and_locks_nobody",
                    "refresh_token_out_of_scripts_reach",
                    "forged_cross_site_refresh",
                    "deeply_nested_json",
                    "stored_html_opens_as_a_download",
                    "parquet_bomb",
                )
            }
            verdicts: dict[str, Any] = {}
            for name, probe in probes.items():
                try:
                    verdicts[name] = "refused" if probe() else "NOT REFUSED"
                except Exception as error:
                    verdicts[name] = f"error: {type(error).__name__}: {error}"[:300]
                print(f"{name}: {verdicts[name]}", flush=True)
            lost = abuse.data_lost()
    print(
        json.dumps(
            {
                "benchmark": "abuse",
                "probes": len(verdicts),
                "refused_as_expected": sum(v == "refused" for v in verdicts.values()),
                "server_errors": len(abuse.server_errors),
                "server_error_requests": abuse.server_errors,
                "data_lost": len(lost),
                "lost": lost,
                "verdicts": verdicts,
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
