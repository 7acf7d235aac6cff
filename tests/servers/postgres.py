"""A throwaway PostgreSQL server for the tests: `run_postgres(base_dir)` yields its URL.

The server is a private cluster made by `initdb` in a fresh directory, started in the
foreground (so a crash is noticed at once), listening on 127.0.0.1 on a free port only, with
its unix socket inside the same directory and durability switched off for speed. It holds a
role `forgeline` (password `forgeline`) that owns a database `forgeline`.

PostgreSQL refuses to run as root. When the tests run as root, the cluster is made and run as
the unprivileged `postgres` user (the Debian package creates it): subprocess switches user,
group and supplementary groups before exec, exactly like `runuser -u postgres --`. That
user cannot reach pytest's `/tmp/pytest-of-root` (mode 0700), so the cluster always lives in
its own `mkdtemp` directory under /tmp, chowned to the user that runs the server, and removed
on exit. The server's log goes to `base_dir/postgres.log` (opened by this process, so it
stays readable after the cluster is gone).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from tests.servers import free_port, wait_until

ROLE = "forgeline"
PASSWORD = "forgeline"
DATABASE = "forgeline"
SUPERUSER = "postgres"
RUN_AS_WHEN_ROOT = "postgres"
DEBIAN_PACKAGE = "postgresql"
STARTUP_TIMEOUT = 60.0

# Settings for a disposable test server: nothing needs to survive a crash.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_connections": "200",
    "shared_buffers": "64MB",
    "checkpoint_timeout": "1h",
    "max_wal_size": "1GB",
    "autovacuum": "off",
    "log_min_messages": "warning",
    "log_connections": "off",
    "timezone": "UTC",
}


def find_bin_dir() -> Path:
    """The directory holding `initdb`, `postgres` and `pg_ctl` (the newest version found).

    Debian keeps the server programs out of PATH, in /usr/lib/postgresql/<major>/bin;
    `FORGELINE_PG_BIN_DIR` overrides the search.
    """
    override = os.environ.get("FORGELINE_PG_BIN_DIR")
    candidates: list[Path] = [Path(override)] if override else []
    if not override:
        versioned = Path("/usr/lib/postgresql").glob("*/bin")
        candidates += sorted(versioned, key=_major_version, reverse=True)
        on_path = shutil.which("initdb")
        if on_path:  # /usr/local/bin/initdb may be a symlink into the versioned dir
            candidates.append(Path(on_path).resolve().parent)
    for candidate in candidates:
        if all((candidate / name).is_file() for name in ("initdb", "postgres", "pg_ctl")):
            return candidate
    raise RuntimeError(
        "PostgreSQL server programs (initdb, postgres, pg_ctl) not found"
        + (f" in FORGELINE_PG_BIN_DIR={override}" if override else "")
        + f"; install the Debian package `{DEBIAN_PACKAGE}` "
        f"(apt-get install -y {DEBIAN_PACKAGE}), which puts them in /usr/lib/postgresql/<N>/bin"
    )


def _major_version(bin_dir: Path) -> int:
    match = re.fullmatch(r"\d+", bin_dir.parent.name)
    return int(match.group()) if match else -1


def _run_as() -> pwd.struct_passwd | None:
    """The account to run the server as: None for the current one, `postgres` for root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(RUN_AS_WHEN_ROOT)
    except KeyError:
        raise RuntimeError(
            f"PostgreSQL refuses to run as root and there is no `{RUN_AS_WHEN_ROOT}` user to run "
            f"it as; the Debian package `{DEBIAN_PACKAGE}` creates one"
        ) from None


def _child_kwargs(account: pwd.struct_passwd | None, cwd: Path) -> dict[str, Any]:
    """subprocess arguments for a server program: a clean environment, and the user switch."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C", TZ="UTC")
    kwargs: dict[str, Any] = {"cwd": cwd, "env": env}
    if account is not None:
        env.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
        kwargs.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
    return kwargs


def _answers(connect: Callable[[], psycopg.Connection[Any]]) -> bool:
    connect().close()
    return True


def _log_tail(log_path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def run_postgres(base_dir: Path) -> Iterator[str]:
    """Start a private PostgreSQL; yield its URL, `postgresql://forgeline:...@127.0.0.1:<port>/forgeline`.

    The cluster is stopped (`pg_ctl stop -m immediate`) and deleted when the block ends.
    """
    bin_dir = find_bin_dir()
    account = _run_as()
    base_dir.mkdir(parents=True, exist_ok=True)
    log_path = base_dir / "postgres.log"

    root = Path(tempfile.mkdtemp(prefix="forgeline-pg-", dir="/tmp"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        if account is not None:
            os.chown(root, account.pw_uid, account.pw_gid)
        data_dir, socket_dir = root / "data", root / "run"
        socket_dir.mkdir(mode=0o700)
        if account is not None:
            os.chown(socket_dir, account.pw_uid, account.pw_gid)
        kwargs = _child_kwargs(account, root)
        initdb = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(data_dir),
                "--username",
                SUPERUSER,
                "--auth-local",
                "trust",
                "--auth-host",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            **kwargs,
        )
        if initdb.returncode != 0:
            raise RuntimeError(
                f"initdb failed ({initdb.returncode}):\n"
                + initdb.stdout.decode(errors="replace")
                + initdb.stderr.decode(errors="replace")
            )

        port = free_port()
        settings = [arg for k, v in SERVER_SETTINGS.items() for arg in ("-c", f"{k}={v}")]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(data_dir),
                    "-p",
                    str(port),
                    "-k",
                    str(socket_dir),
                    *settings,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kwargs,
            )

        def alive() -> bool:
            return proc is not None and proc.poll() is None

        def superuser() -> psycopg.Connection[tuple[Any, ...]]:
            return psycopg.connect(
                host=str(socket_dir),
                port=port,
                user=SUPERUSER,
                dbname="postgres",
                autocommit=True,
                connect_timeout=2,
            )

        url = f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
        try:
            wait_until(
                lambda: _answers(superuser),
                timeout=STARTUP_TIMEOUT,
                what="postgres (unix socket)",
                alive=alive,
            )
            with superuser() as conn:
                conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
                conn.execute(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
            wait_until(
                lambda: _answers(lambda: psycopg.connect(url, connect_timeout=2)),
                timeout=STARTUP_TIMEOUT,
                what=f"postgres ({url})",
                alive=alive,
            )
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n--- {log_path} ---\n{_log_tail(log_path)}") from exc

        yield url
    finally:
        if proc is not None:
            _stop(proc, bin_dir, root / "data", account, root)
        shutil.rmtree(root, ignore_errors=True)


def _stop(
    proc: subprocess.Popen[bytes],
    bin_dir: Path,
    data_dir: Path,
    account: pwd.struct_passwd | None,
    cwd: Path,
) -> None:
    if proc.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                [str(bin_dir / "pg_ctl"), "stop", "-D", str(data_dir), "-m", "immediate", "-w"],
                capture_output=True,
                timeout=30,
                **_child_kwargs(account, cwd),
            )
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        # The postmaster did not go: kill its whole process group (it leads a new session).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
