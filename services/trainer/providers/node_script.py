"""The startup script of a cloud training node: AWS runs it as cloud-init user data, GCP as
its `startup-script` metadata. Both run it as root at boot.

It carries no secret: only two presigned URLs, for the bootstrap bundle (node_bootstrap.py,
its axolotl plugin and post_training.py: the very files the `local` provider runs) and for the
job's manifest (which holds the callback token). Whatever happens, the machine powers off when
the script ends: on AWS that terminates it (InstanceInitiatedShutdownBehavior), on GCP it stops
billing for the GPU, and the platform deletes it.

The environment variables FORGELINE_PYTHON (a Python with axolotl already installed),
FORGELINE_WORKDIR and FORGELINE_SHUTDOWN exist so that the integration tests can run this
very script on the test machine instead of a fresh GPU node.
"""

from __future__ import annotations

import shlex
import tarfile
from pathlib import Path

from services.common.engines import ENGINES

ENGINE_DIR = Path(__file__).resolve().parents[1] / "engine"
BUNDLE_FILES = ("node_bootstrap.py", "forgeline_events.py", "post_training.py")

_TEMPLATE = """#!/bin/bash
# Forgeline training node for job {job_id}.
set -u
WORK="${{FORGELINE_WORKDIR:-/opt/forgeline}}"
mkdir -p "$WORK" && cd "$WORK" || exit 1
exec >>"$WORK/node.log" 2>&1
# Power off when this script ends, whatever happened: an idle GPU costs the user money.
trap 'sync; ${{FORGELINE_SHUTDOWN:-shutdown -h now}}' EXIT
export AXOLOTL_DO_NOT_TRACK=1 DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
PYTHON="${{FORGELINE_PYTHON:-}}"
if [ -z "$PYTHON" ]; then
  python3 -m venv "$WORK/venv" || exit 1
  "$WORK/venv/bin/pip" install -q {requirements} || exit 1
  PYTHON="$WORK/venv/bin/python"
fi
fetch() {{
  "$PYTHON" -c 'import sys, urllib.request as u; u.urlretrieve(sys.argv[1], sys.argv[2])' "$1" "$2"
}}
fetch {bundle_url} bootstrap.tar.gz && tar -xzf bootstrap.tar.gz || exit 1
"$PYTHON" node_bootstrap.py --manifest-url {manifest_url} --workdir "$WORK/job"
"""


def startup_script(job_id: str, *, bundle_url: str, manifest_url: str) -> str:
    # The same pinned axolotl as the local engine, so a config behaves alike everywhere.
    requirements = " ".join(shlex.quote(r) for r in ENGINES["axolotl"].requirements)
    return _TEMPLATE.format(
        job_id=job_id,
        requirements=requirements,
        bundle_url=shlex.quote(bundle_url),
        manifest_url=shlex.quote(manifest_url),
    )


def write_bundle(target: Path) -> Path:
    """node_bootstrap.py and its plugin, packed for a node to fetch."""
    with tarfile.open(target, "w:gz") as archive:
        for name in BUNDLE_FILES:
            archive.add(ENGINE_DIR / name, arcname=name)
    return target
