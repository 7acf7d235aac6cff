"""Property-based fuzzing of every documented operation: no input may cause a 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.factories import make_api_key, stranger_address
from tests.integration.conftest import Stack


@pytest.mark.both_databases
def test_no_server_errors_under_fuzzing(stack: Stack, client: httpx.Client, tmp_path: Path) -> None:
    # The administrator's API key reaches every operation, and an API key (unlike a session)
    # cannot be ended by fuzzing /auth/logout mid-run.
    key = make_api_key(client, stack.admin, name="fuzzing")["key"]
    result = subprocess.run(
        [
            Path(sys.executable).with_name("schemathesis").as_posix(),
            "run",
            f"{stack.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {key}",
            # The fuzzer's failed sign-ins count against an address of its own, not loopback's
            # (services/gateway/sign_in_throttle.py), which every other test signs in from.
            "--header",
            f"X-Forwarded-For: {stranger_address()}",
            "--max-examples",
            "25",
            "--seed",
            "20261129",
            "--request-timeout",
            "20",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # schemathesis keeps a cache in its working folder
        env={"SCHEMATHESIS_HOOKS": "", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
