"""Re-encrypt every stored secret with the current key.

    python -m services.supervisor.rotate_secrets

To replace the platform key: set the new one as `FORGELINE_SECRET_KEY` and the old one in
`FORGELINE_PREVIOUS_SECRET_KEYS`, restart, run this with the same environment, then drop the
old key. Under `make run` with no key set, the key is the data folder's `secret.key`, as the
supervisor uses it. Services may keep running meanwhile: a value they change during the run
is kept (services/common/secret_rotation.py).

It prints what it did per column and exits 1 if some value no key decrypts: that secret is
already lost (its owner must enter it again), and it is left as it was.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from sqlalchemy.orm import Mapped

from services.auth import models as auth_models
from services.auth.settings import AuthSettings
from services.common.crypto import SecretBox
from services.common.db import create_db_engine
from services.common.secret_rotation import ColumnRotation, rotate_column
from services.common.settings import BaseServiceSettings
from services.deployer import models as deployer_models
from services.deployer.settings import DeployerSettings
from services.rag import models as rag_models
from services.rag.settings import RagSettings
from services.supervisor.settings import SupervisorSettings
from services.trainer import models as trainer_models
from services.trainer.settings import TrainerSettings

# Each service's settings (its database) and the columns it encrypts.
SERVICES: tuple[tuple[type[BaseServiceSettings], tuple[Mapped[Any], ...]], ...] = (
    (AuthSettings, auth_models.ENCRYPTED_COLUMNS),
    (DeployerSettings, deployer_models.ENCRYPTED_COLUMNS),
    (RagSettings, rag_models.ENCRYPTED_COLUMNS),
    (TrainerSettings, trainer_models.ENCRYPTED_COLUMNS),
)


def rotate_all() -> list[ColumnRotation]:
    results = []
    for settings_class, columns in SERVICES:
        settings = settings_class()
        engine = create_db_engine(settings)
        box = SecretBox(settings)
        try:
            results += [rotate_column(engine, box, column) for column in columns]
        finally:
            engine.dispose()
    return results


def main() -> int:
    if not os.environ.get("FORGELINE_SECRET_KEY"):
        key_file = SupervisorSettings().data_dir / "secret.key"
        if key_file.exists():  # the key `make run` generated and uses
            os.environ["FORGELINE_SECRET_KEY"] = key_file.read_text().strip()
    results = rotate_all()
    for result in results:
        print(f"{result.column}: {result.rotated} re-encrypted", end="")
        if result.unreadable:
            print(
                f", {len(result.unreadable)} no key decrypts (rows {', '.join(result.unreadable)})"
            )
        else:
            print()
    return 1 if any(r.unreadable for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
