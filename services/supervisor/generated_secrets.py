"""Secrets `make run` generates once per data folder and keeps there, readable by the owner
only: the encryption key, the service token, the embedded servers' passwords and keys.

Kept, not regenerated at each start: what they protect (encrypted rows, the object store's
identity, Valkey's queues) outlives a restart.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from services.common.private_files import write_private


def _token() -> str:
    return secrets.token_urlsafe(32)


def generated_secret(path: Path, make: Callable[[], str] = _token) -> str:
    """The secret in `path`, made by `make` and written 0600 the first time."""
    if not path.exists():
        write_private(path, make())
    return path.read_text().strip()
