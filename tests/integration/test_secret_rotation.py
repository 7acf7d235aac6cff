"""Replacing the platform key: `python -m services.supervisor.rotate_secrets` re-encrypts
every stored secret with the new key, so the old one can be dropped without losing any;
a secret no key opens is reported and left as it was (issue 14, a rotated secret key)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select

from services.auth.server import MIGRATIONS as AUTH_MIGRATIONS
from services.auth.server import VERSION_TABLE as AUTH_VERSIONS
from services.common.crypto import SECRET_UNREADABLE, SecretBox, generate_key
from services.common.db import create_db_engine, run_migrations
from services.common.errors import ForgelineError
from services.common.settings import BaseServiceSettings
from services.deployer.models import Deployment
from services.deployer.server import MIGRATIONS as DEPLOYER_MIGRATIONS
from services.deployer.server import VERSION_TABLE as DEPLOYER_VERSIONS
from services.rag.server import MIGRATIONS as RAG_MIGRATIONS
from services.rag.server import VERSION_TABLE as RAG_VERSIONS
from services.trainer.models import Credential
from services.trainer.server import MIGRATIONS as TRAINER_MIGRATIONS
from services.trainer.server import VERSION_TABLE as TRAINER_VERSIONS
from tests.paths import REPO_ROOT


def _box(data_dir: Path, key: str, previous: str = "") -> SecretBox:
    return SecretBox(
        BaseServiceSettings(data_dir=data_dir, secret_key=key, previous_secret_keys=previous)
    )


def _rotate(data_dir: Path, key: str, previous: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FORGELINE_DATA_DIR": str(data_dir),
        "FORGELINE_SECRET_KEY": key,
        "FORGELINE_PREVIOUS_SECRET_KEYS": previous,
    }
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "services.supervisor.rotate_secrets"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_rotation_lets_the_old_key_go_and_keeps_every_secret(tmp_path: Path) -> None:
    old_key, new_key, lost_key = generate_key(), generate_key(), generate_key()
    settings = BaseServiceSettings(data_dir=tmp_path, secret_key=old_key)
    engine = create_db_engine(settings)
    for migrations, versions in (
        (AUTH_MIGRATIONS, AUTH_VERSIONS),
        (DEPLOYER_MIGRATIONS, DEPLOYER_VERSIONS),
        (RAG_MIGRATIONS, RAG_VERSIONS),
        (TRAINER_MIGRATIONS, TRAINER_VERSIONS),
    ):
        run_migrations(engine, migrations, versions)
    old = _box(tmp_path, old_key)
    credential = Credential(
        owner_id="u1", name="aws", kind="aws", secret_encrypted=old.encrypt('{"k": "v"}')
    )
    served = Deployment(owner_id="u1", name="tutor", api_key_encrypted=old.encrypt("vllm-key"))
    local = Deployment(owner_id="u1", name="local")  # no key: nothing to rotate
    lost = _box(tmp_path, lost_key).encrypt("x")  # with a key nobody kept
    orphan = Credential(owner_id="u2", name="gone", kind="aws", secret_encrypted=lost)
    with Session(engine, expire_on_commit=False) as db:
        db.add_all([credential, served, local, orphan])
        db.commit()
    engine.dispose()
    orphan_before = orphan.secret_encrypted

    rotated = _rotate(tmp_path, new_key, old_key)
    assert rotated.returncode == 1, rotated.stderr  # the orphan is reported
    assert "trainer_credentials.secret_encrypted: 1 re-encrypted" in rotated.stdout
    assert f"1 no key decrypts (rows {orphan.id})" in rotated.stdout
    assert "deployer_deployments.api_key_encrypted: 1 re-encrypted" in rotated.stdout

    # The old key is gone from the configuration; every secret still opens.
    new_only = _box(tmp_path, new_key)
    engine = create_db_engine(settings)
    with Session(engine) as db:
        stored = {row.id: row.secret_encrypted for row in db.exec(select(Credential))}
        keys = {row.id: row.api_key_encrypted for row in db.exec(select(Deployment))}
    engine.dispose()
    assert new_only.decrypt(stored[credential.id]) == '{"k": "v"}'
    assert new_only.decrypt(keys[served.id]) == "vllm-key"
    assert keys[local.id] == ""
    assert stored[orphan.id] == orphan_before
    with pytest.raises(ForgelineError) as unreadable:
        new_only.decrypt(orphan_before)
    assert unreadable.value.code == SECRET_UNREADABLE

    # Run again with the new key alone: nothing left that needs the old one.
    again = _rotate(tmp_path, new_key, "")
    assert "trainer_credentials.secret_encrypted: 1 re-encrypted" in again.stdout
