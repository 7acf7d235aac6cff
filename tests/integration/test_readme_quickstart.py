"""The README's quick start works as written, against a running platform."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.integration.conftest import Stack

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_quickstart_runs_as_written(stack: Stack, tmp_path: Path) -> None:
    text = README.read_text()
    match = re.search(r"<!-- quick-start:.*?-->\n```sh\n(.*?)```", text, re.DOTALL)
    assert match, "the README lost its quick-start block"
    script = match.group(1).replace("http://127.0.0.1:8000", stack.url)
    # Each backend gets a fresh database, but the same address must not be registered twice.
    script = script.replace("ada@example.com", f"ada-{stack.backend}@example.com")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    # register, me (token), me (API key): three JSON bodies naming the same account.
    assert len(lines) == 3
    assert all(f'"email":"ada-{stack.backend}@example.com"' in line for line in lines)
