"""The cloud node's startup script: valid bash, no secrets, URLs quoted, powers off."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

from services.trainer.providers.node_script import BUNDLE_FILES, startup_script, write_bundle

URL = "https://bucket.s3.amazonaws.com/u/jobs/j/node/manifest.json?X-Amz-Signature=a&b=$(reboot)"


def test_the_startup_script_is_valid_bash_and_quotes_its_urls() -> None:
    script = startup_script("job1", bundle_url=URL, manifest_url=URL)
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0
    assert f"'{URL}'" in script  # single-quoted: `&` and `$(...)` stay inert
    assert "trap" in script and "shutdown -h now" in script
    assert "axolotl==0.19.0" in script


def test_the_bundle_holds_the_bootstrap_and_its_plugin(tmp_path: Path) -> None:
    with tarfile.open(write_bundle(tmp_path / "b.tar.gz")) as archive:
        assert sorted(archive.getnames()) == sorted(BUNDLE_FILES)
