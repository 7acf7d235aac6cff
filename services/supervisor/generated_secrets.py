"""Secrets `make run` generates once per data folder and keeps there, readable by the owner
only: the encryption key, the service token, the embedded servers' passwords and keys.

Kept, not regenerated at each start: what they protect (encrypted rows, the object store's
identity, Valkey's queues) outlives a restart.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def _token() -> str:
    return secrets.token_urlsafe(32)


def write_private(path: Path, data: str | bytes) -> None:
    """Write `path` readable by its owner only: created 0600, so never readable by others,
    not even for a moment; an existing file is narrowed to 0600 too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data.encode() if isinstance(data, str) else data)


def generated_secret(path: Path, make: Callable[[], str] = _token) -> str:
    """The secret in `path`, made by `make` and written 0600 the first time."""
    if not path.exists():
        write_private(path, make())
    return path.read_text().strip()
