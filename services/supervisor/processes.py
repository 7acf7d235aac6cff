"""Child processes the supervisor owns: started in their own process group, watched, and
stopped with their whole tree, so Ctrl-C leaves no orphans behind."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux: if the supervisor is killed outright (SIGKILL), the child gets SIGTERM.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str],
        log_file: Path,
        echo: bool,
        ready: Callable[[], bool] | str,
        cwd: Path | None = None,
        restartable: bool = False,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_file = log_file
        self.echo = echo
        self.ready = ready
        self.cwd = cwd
        self.restartable = restartable
        self.restarts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.tail: deque[str] = deque(maxlen=40)
        self._printed_ready_line = False
        self._pump: threading.Thread | None = None

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own group: Ctrl-C reaches us, and we stop it in order
            preexec_fn=_die_with_parent,
        )
        assert self.process.stdout is not None
        self._pump = threading.Thread(
            target=self._copy_output, args=(self.process.stdout,), daemon=True
        )
        self._pump.start()

    def _copy_output(self, stream: IO[bytes]) -> None:
        with self.log_file.open("ab") as log:
            for raw in iter(stream.readline, b""):
                log.write(raw)
                log.flush()
                line = raw.decode(errors="replace").rstrip()
                self.tail.append(line)
                if isinstance(self.ready, str) and self.ready in line:
                    self._printed_ready_line = True
                if self.echo:
                    sys.stdout.write(f"{self.name:>8} | {line}\n")
                    sys.stdout.flush()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited during start-up:\n" + "\n".join(self.tail))
            try:
                if isinstance(self.ready, str):  # ready once it has printed this line
                    if self._printed_ready_line:
                        return
                elif self.ready():
                    return
            except Exception:  # noqa: S110  (not listening yet)
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} was not ready after {timeout:.0f}s:\n" + "\n".join(self.tail)
        )

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the group, wait, then SIGKILL whatever is left of it."""
        if self.process is None:
            return
        pgid = self.process.pid
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        # Grandchildren may outlive the leader; the group id still names them.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.process.wait()
        if self._pump is not None:
            self._pump.join(timeout=2)
