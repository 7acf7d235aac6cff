"""A user's stored credentials: AWS access keys and GCP service accounts to start GPU machines
in their own account, and a wandb API key to log runs online.

Cloud credentials are checked with a dry run before they are stored, so a typo shows at once
and not half an hour into a job. Secrets are Fernet-encrypted at rest and never returned:
the API shows a hint (the key id's last characters, the service account's email).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from services.common.cloud import accounts
from services.common.cloud.instances import InstanceApi
from services.common.crypto import SecretBox
from services.common.db import get_owned, list_owned, session_scope
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.logging import get_logger
from services.trainer.models import CREDENTIAL_KINDS, TERMINAL, Credential, TrainingJob
from services.trainer.settings import TrainerSettings

log = get_logger(__name__)
_AWS_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_GCP_ZONE = re.compile(r"^[a-z]+-[a-z]+\d-[a-z]$")
_AWS_KEY_ID = re.compile(r"^(AKIA|ASIA)[A-Z0-9]{12,124}$")
_WANDB_KEY = re.compile(r"^[A-Za-z0-9_-]{40,100}$")


@dataclass(frozen=True)
class NewCredential:
    owner_id: str
    name: str
    kind: str
    location: str  # AWS region, GCP zone; empty for wandb
    secret: dict[str, Any]  # aws: access_key_id, secret_access_key[, session_token]
    #                         gcp: service_account (the JSON key file, as a dict or string)
    #                         wandb: api_key


def create(engine: Engine, settings: TrainerSettings, new: NewCredential) -> Credential:
    name = new.name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("invalid_name", "Give the credentials a name of 1 to 200 characters.")
    if new.kind not in CREDENTIAL_KINDS:
        raise InvalidInput("unknown_credential_kind", "Choose aws, gcp or wandb.")
    secret, hint = _normalised(new.kind, new.location, new.secret)
    if new.kind in ("aws", "gcp"):
        # The dry run: a ForgelineError with the cloud's answer reaches the user as it is.
        instance_api(settings, new.kind, new.location, secret).check()
    credential = Credential(
        owner_id=new.owner_id,
        name=name,
        kind=new.kind,
        location=new.location if new.kind != "wandb" else "",
        hint=hint,
        secret_encrypted=SecretBox(settings).encrypt(json.dumps(secret)),
    )
    try:
        with session_scope(engine) as db:
            db.add(credential)
    except IntegrityError as exc:
        raise Conflict(
            "credential_exists", f"You already have credentials named {name!r}."
        ) from exc
    log.info("credentials stored", kind=new.kind, credential_id=credential.id)
    return credential


def list_for(engine: Engine, owner_id: str) -> list[Credential]:
    with session_scope(engine) as db:
        return list_owned(db, Credential, owner_id, newest_first=True)


def list_cloud(engine: Engine) -> list[Credential]:
    """Every stored cloud account, of every owner: for the reapers, not for requests."""
    with session_scope(engine) as db:
        return list(db.exec(select(Credential).where(col(Credential.kind).in_(("aws", "gcp")))))


def get(engine: Engine, owner_id: str, credential_id: str) -> Credential:
    with session_scope(engine) as db:
        credential = get_owned(db, Credential, owner_id, credential_id)
    if credential is None:
        raise NotFound("credential_not_found", "No such credentials.")
    return credential


def delete(
    engine: Engine,
    owner_id: str,
    credential_id: str,
    deployment_on: Callable[[str, str], str] | None = None,
) -> None:
    """Delete the owner's credential unless a job or (asked through `deployment_on`, the
    deployer) a live deployment still runs on it."""
    with session_scope(engine) as db:
        credential = get_owned(db, Credential, owner_id, credential_id)
        if credential is None:
            raise NotFound("credential_not_found", "No such credentials.")
        kind = credential.kind
    # Asked outside the transaction: a remote call must not hold the database.
    if deployment_on is not None and kind != "wandb":
        name = deployment_on(owner_id, credential_id)
        if name:
            raise Conflict(
                "credential_in_use",
                f"The deployment {name!r} runs in this account; stop it first.",
            )
    with session_scope(engine) as db:
        credential = get_owned(db, Credential, owner_id, credential_id)
        if credential is None:
            raise NotFound("credential_not_found", "No such credentials.")
        # Without them, a running job's machine could no longer be stopped or reaped.
        busy = db.exec(
            select(TrainingJob.id)
            .where(TrainingJob.credential_id == credential_id)
            .where(col(TrainingJob.state).not_in(TERMINAL))
        ).first()
        if busy is not None:
            raise Conflict(
                "credential_in_use",
                "A job is running in this account; cancel it or wait for it to end first.",
            )
        db.delete(credential)


def secret_of(settings: TrainerSettings, credential: Credential) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(SecretBox(settings).decrypt(credential.secret_encrypted))
    return value


def api_for(settings: TrainerSettings, credential: Credential) -> InstanceApi:
    return instance_api(
        settings, credential.kind, credential.location, secret_of(settings, credential)
    )


def instance_api(
    settings: TrainerSettings, kind: str, location: str, secret: dict[str, Any]
) -> InstanceApi:
    return accounts.instance_api(settings, kind, location, secret)


def _normalised(kind: str, location: str, secret: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The secret with only the fields we use, and the hint the user sees."""
    if kind == "aws":
        key_id = str(secret.get("access_key_id", "")).strip()
        key = str(secret.get("secret_access_key", "")).strip()
        if not _AWS_KEY_ID.match(key_id) or not key:
            raise InvalidInput(
                "cloud_credentials_invalid",
                "Give an AWS access key id (it starts with AKIA or ASIA) and its secret.",
            )
        if not _AWS_REGION.match(location):
            raise InvalidInput("invalid_region", "Give an AWS region such as us-east-1.")
        cleaned = {"access_key_id": key_id, "secret_access_key": key}
        if secret.get("session_token"):
            cleaned["session_token"] = str(secret["session_token"]).strip()
        return cleaned, f"…{key_id[-4:]}"
    if kind == "gcp":
        account = secret.get("service_account")
        if isinstance(account, str):
            try:
                account = json.loads(account)
            except ValueError:
                account = None
        if not isinstance(account, dict) or account.get("type") != "service_account":
            raise InvalidInput(
                "cloud_credentials_invalid",
                "Paste the whole JSON key file of a Google Cloud service account.",
            )
        if not _GCP_ZONE.match(location):
            raise InvalidInput("invalid_zone", "Give a Google Cloud zone such as us-central1-a.")
        return {"service_account": account}, str(account.get("client_email", ""))[:200]
    key = str(secret.get("api_key", "")).strip()
    if not _WANDB_KEY.match(key):
        raise InvalidInput("wandb_key_invalid", "Paste your wandb API key from wandb.ai/authorize.")
    return {"api_key": key}, f"…{key[-4:]}"
