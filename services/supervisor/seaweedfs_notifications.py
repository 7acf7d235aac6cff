"""The `notification.toml` that makes SeaweedFS' filer post its events to the indexer.

SeaweedFS takes no S3 bucket-notification configuration; its filer instead reads
`notification.toml` once at start-up and, with `[notification.webhook]` enabled, POSTs every
metadata change as JSON (parsed by `services.indexer.events.parse_seaweedfs_event`).

Where `weed mini` finds the file: viper searches, in order, the directory given by the global
`-config_dir` flag, the working directory, `$HOME/.seaweedfs/`, `/usr/local/etc/seaweedfs/`
and `/etc/seaweedfs/` (weed/util/config.go). `-config_dir` is a flag of `weed` itself, so it
goes before the sub-command: `weed -config_dir=DIR mini -dir=... -s3.port=...`; see
`with_config_dir`. `weed scaffold -config=notification` prints every key.

Delivery facts seen against `weed mini` 4.48: events arrive within milliseconds, but not
strictly in order (a directory's `update` once came before its `create`); a failed POST is
retried `max_retries` times with backoff, then dropped to a dead-letter log. The indexer must
therefore re-check objects before acting, and rely on reconcile for what was lost.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from services.common.private_files import write_private

NOTIFICATION_FILE = "notification.toml"
# Only object paths: the filer also reports its own files (/etc/iam, /etc/s3, /topics, ...).
# "/buckets/.system/" still passes this prefix; the parser drops it.
DEFAULT_PATH_PREFIXES = ("/buckets/",)


def _toml_str(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes, \uXXXX included).
    return json.dumps(value)


def notification_toml(
    *,
    endpoint: str,
    bearer_token: str | None = None,
    path_prefixes: Sequence[str] = DEFAULT_PATH_PREFIXES,
    timeout_seconds: int = 10,
    max_retries: int = 3,
    backoff_seconds: int = 3,
    max_backoff_seconds: int = 30,
    workers: int = 5,
    buffer_size: int = 10_000,
) -> str:
    """The file's text. Ranges are SeaweedFS' own (it refuses to start the filer otherwise)."""
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"webhook endpoint must be an http(s) URL, got {endpoint!r}")
    checks = {
        "timeout_seconds": (timeout_seconds, 1, 300),
        # SeaweedFS reads 0 as "use the default (3)", so "no retries" cannot be expressed.
        "max_retries": (max_retries, 1, 10),
        "backoff_seconds": (backoff_seconds, 1, 60),
        "max_backoff_seconds": (max_backoff_seconds, backoff_seconds, 300),
        "workers": (workers, 1, 100),
        "buffer_size": (buffer_size, 100, 1_000_000),
    }
    for name, (value, low, high) in checks.items():
        if not low <= value <= high:
            raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    lines = [
        "# Written by Forgeline (services/supervisor/seaweedfs_notifications.py).",
        "[notification.webhook]",
        "enabled = true",
        f"endpoint = {_toml_str(endpoint)}",
    ]
    if bearer_token:
        lines.append(f"bearer_token = {_toml_str(bearer_token)}")
    lines += [
        f"timeout_seconds = {timeout_seconds}",
        f"max_retries = {max_retries}",
        f"backoff_seconds = {backoff_seconds}",
        f"max_backoff_seconds = {max_backoff_seconds}",
        f"workers = {workers}",
        f"buffer_size = {buffer_size}",
        'event_types = ["create", "update", "delete", "rename"]',
        f"path_prefixes = [{', '.join(_toml_str(p) for p in path_prefixes)}]",
        "",
    ]
    return "\n".join(lines)


def write_notification_config(config_dir: Path, text: str) -> Path:
    """Write `text` (from `notification_toml`) to `config_dir/notification.toml`, mode 0600
    since it may hold the bearer token."""
    path = config_dir / NOTIFICATION_FILE
    write_private(path, text)
    return path


def with_config_dir(weed_argv: Sequence[str], config_dir: Path) -> list[str]:
    """`[weed, sub-command, ...]` → `[weed, -config_dir=DIR, sub-command, ...]`."""
    binary, *rest = weed_argv
    return [binary, f"-config_dir={config_dir}", *rest]
