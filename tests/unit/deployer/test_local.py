"""Local servers' helpers: the command line, the log tail, unpacking a model archive, and
stopping a process tree by its record (which survives the tree's root being killed)."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import psutil
import pytest

from services.common.errors import InvalidInput
from services.deployer.artifacts import COMPLETE_MARKER, unpack
from services.deployer.local import LocalServers, log_tail, snapshot, vllm_argv


def test_the_server_command_line() -> None:
    argv = vllm_argv(Path("/py"), Path("/m"), "tutor", "127.0.0.1", 8123, ["--dtype", "float32"])
    assert argv[:3] == ["/py", "-m", "vllm.entrypoints.openai.api_server"]
    assert argv[argv.index("--served-model-name") + 1] == "tutor"
    assert argv[argv.index("--port") + 1] == "8123"
    assert argv[-2:] == ["--dtype", "float32"]


def test_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    assert log_tail(log, 5) == []
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    assert log_tail(log, 3) == ["line 997", "line 998", "line 999"]


def test_the_platforms_health_checks_do_not_push_the_servers_own_lines_out(
    tmp_path: Path,
) -> None:
    # The deployer asks /health every few seconds; a day of that would otherwise be all a
    # user sees of the log (CI saw "Application startup complete" leave the last 500 lines).
    probe = 'INFO:     127.0.0.1:43422 - "GET /health HTTP/1.1" 200 OK\n'
    log = tmp_path / "server.log"
    log.write_text("INFO:     Application startup complete.\n" + probe * 20_000 + "last\n")
    assert log_tail(log, 2) == ["INFO:     Application startup complete.", "last"]


def _archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_model_archive_is_unpacked_whole(tmp_path: Path) -> None:
    archive = tmp_path / "merged.tar.gz"
    archive.write_bytes(_archive({"config.json": b"{}", "model.safetensors": b"weights"}))
    target = unpack(archive, tmp_path / "v1" / "model")
    assert (target / "model.safetensors").read_bytes() == b"weights"
    assert (target / COMPLETE_MARKER).exists()


def test_an_archive_that_escapes_or_holds_no_model_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(_archive({"../escape": b"x", "config.json": b"{}"}))
    with pytest.raises(tarfile.TarError):
        unpack(archive, tmp_path / "bad" / "model")
    assert not (tmp_path / "escape").exists()
    archive.write_bytes(_archive({"weights.bin": b"x"}))
    with pytest.raises(InvalidInput, match=r"config\.json"):
        unpack(archive, tmp_path / "empty" / "model")
    assert not (tmp_path / "empty" / "model").exists()
    assert [p.name for p in (tmp_path / "empty").iterdir()] == []  # no staging left


def test_an_archive_that_unpacks_too_large_is_refused_before_it_is_written(
    tmp_path: Path,
) -> None:
    # Hostile: a training machine uploads a gzip bomb as its "model" (5 MiB of zeros packs
    # into a few KiB; the same trick scales to terabytes).
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(_archive({"config.json": b"{}", "zeros.bin": bytes(5 * 1024 * 1024)}))
    assert archive.stat().st_size < 64 * 1024
    with pytest.raises(InvalidInput) as refused:
        unpack(archive, tmp_path / "bomb" / "model", max_bytes=1024 * 1024)
    assert refused.value.code == "model_archive_too_large"
    assert "GiB unpacked" in refused.value.message
    # Nothing of it is left: no target, no staging folder, no partly written member.
    assert [p.name for p in (tmp_path / "bomb").iterdir()] == []

    many = tmp_path / "many.tar.gz"
    many.write_bytes(_archive({"config.json": b"{}", **{f"shard-{i}": b"x" for i in range(20)}}))
    with pytest.raises(InvalidInput, match="more than 10 files"):
        unpack(many, tmp_path / "many" / "model", max_members=10)
    # Within the limits the same archive unpacks.
    assert (unpack(many, tmp_path / "ok" / "model") / "shard-19").read_bytes() == b"x"


def test_a_tree_whose_root_was_killed_is_stopped_by_its_record() -> None:
    # A parent that starts a long-lived child, like vLLM's API server and engine core.
    code = (
        "import subprocess, sys, time;"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']);"
        "time.sleep(120)"
    )
    root = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        while len(snapshot(root.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        record = snapshot(root.pid)
        assert len(record) == 2
        child = psutil.Process(record[1]["pid"])
        root.kill()
        root.wait()
        assert child.is_running()  # orphaned, not dead
        assert LocalServers().stop("d1", record) == 1
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    finally:
        if root.poll() is None:
            root.kill()


def test_a_reused_pid_is_not_ours() -> None:
    assert LocalServers().stop("d1", [{"pid": 1, "created": 0.0}]) == 0
