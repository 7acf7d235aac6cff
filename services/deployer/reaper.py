"""The serving reaper: terminates any serving instance, in any stored cloud account, whose
deployment is not starting or ready on it. The training reaper (services/trainer/reaper.py)
does the same for training instances; each judges only its own role.

A stop terminates a deployment's machine; the reaper catches what that cannot: a worker
killed between launching and recording the machine, a stop whose worker failed, a machine
left by an earlier attempt. It runs in the deployer's API process, so it keeps working while
no worker is alive.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from services.common.cloud.accounts import report_unlistable
from services.common.errors import ForgelineError
from services.common.logging import get_logger
from services.deployer import lifecycle
from services.deployer.catalogue import TrainerCatalogue
from services.deployer.cloud import SERVING_ROLE, api_from_source
from services.deployer.models import Deployment
from services.deployer.settings import DeployerSettings
from services.deployer.states import READY, STARTING

log = get_logger(__name__)


@dataclass(frozen=True)
class Reaped:
    credential_id: str
    ref: str
    deployment_id: str
    reason: str


def why_not_wanted(row: Deployment | None, owner_id: str, ref: str) -> str | None:
    """None while the instance serves a starting or ready deployment; else why it goes."""
    if row is None or row.owner_id != owner_id:
        return "no such deployment"
    if row.state not in (STARTING, READY):
        return f"deployment {row.state}"
    if row.compute_ref == ref:
        return None
    if row.state == STARTING and not row.compute_ref:
        return None  # launched a moment ago; the worker is about to record it
    return "not the deployment's current machine"


def judged(role: str, instance_owner: str, credential_owner: str) -> bool:
    """Whether this reaper may judge an instance at all: serving ones, of the account's
    owner (or untagged), never training ones or another user's in a shared account."""
    return role == SERVING_ROLE and instance_owner in ("", credential_owner)


def reap(engine: Engine, settings: DeployerSettings, trainer: TrainerCatalogue) -> list[Reaped]:
    reaped: list[Reaped] = []
    for source in trainer.cloud_credential_sources():
        credential = source.credential
        try:
            api = api_from_source(settings, source)
            instances = api.tagged()
        except ForgelineError as error:
            report_unlistable(credential.id, credential.owner_id, error)
            continue
        for instance in instances:
            if not judged(instance.role, instance.owner_id, credential.owner_id):
                continue
            row = lifecycle.load(engine, instance.job_id)
            reason = why_not_wanted(row, credential.owner_id, f"{api.provider}:{instance.ref}")
            if reason is None:
                continue
            try:
                api.terminate(instance.ref)
            except ForgelineError as error:
                log.warning("reaper could not terminate", ref=instance.ref, code=error.code)
                continue
            log.info("reaped a serving instance", ref=instance.ref,
                     deployment_id=instance.job_id, reason=reason)  # fmt: skip
            reaped.append(Reaped(credential.id, instance.ref, instance.job_id, reason))
    return reaped


def run(
    engine: Engine,
    settings: DeployerSettings,
    trainer: TrainerCatalogue,
    stopping: threading.Event,
) -> None:
    while not stopping.wait(settings.reaper_interval_seconds):
        try:
            reap(engine, settings, trainer)
        except Exception:  # the trainer restarting, a database hiccup: next round
            log.exception("serving reaper pass failed")
