"""The reaper: terminates any training instance, in any stored cloud account, whose job is not
running on it.

The runner terminates a job's machine whenever the job ends; the reaper catches what that
cannot: a worker killed between launching and recording the instance, a job deleted with
its machine up, a relaunch that left the first machine behind. It runs in the trainer's API
process, so it keeps working while no worker is alive.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from services.common.cloud.accounts import report_unlistable
from services.common.db import session_scope
from services.common.errors import ForgelineError
from services.common.logging import get_logger
from services.trainer import credentials
from services.trainer.models import PROVISIONING, TERMINAL, Credential, TrainingJob
from services.trainer.providers.cloud import TRAINING_ROLE
from services.trainer.settings import TrainerSettings

log = get_logger(__name__)


@dataclass(frozen=True)
class Reaped:
    credential_id: str
    ref: str
    job_id: str
    reason: str


def reap(engine: Engine, settings: TrainerSettings) -> list[Reaped]:
    accounts = credentials.list_cloud(engine)
    reaped: list[Reaped] = []
    for credential in accounts:
        try:
            api = credentials.api_for(settings, credential)
            instances = api.tagged()
        except ForgelineError as error:
            report_unlistable(credential.id, credential.owner_id, error)
            continue
        for instance in instances:
            if instance.role != TRAINING_ROLE or instance.owner_id not in ("", credential.owner_id):
                continue  # a deployment's machine, or another user's job in a shared account
            reason = _why_not_wanted(
                engine, credential, instance.job_id, f"{api.provider}:{instance.ref}"
            )
            if reason is None:
                continue
            try:
                api.terminate(instance.ref)
            except ForgelineError as error:
                log.warning("reaper could not terminate", ref=instance.ref, code=error.code)
                continue
            log.info("reaped an instance", ref=instance.ref, job_id=instance.job_id, reason=reason)
            reaped.append(Reaped(credential.id, instance.ref, instance.job_id, reason))
    return reaped


def _why_not_wanted(engine: Engine, credential: Credential, job_id: str, ref: str) -> str | None:
    """None while the instance serves a running job; else why it should go."""
    with session_scope(engine) as db:
        job = db.get(TrainingJob, job_id)
    if job is None or job.owner_id != credential.owner_id:
        return "no such job"
    if job.state in TERMINAL:
        return f"job {job.state}"
    if job.compute_ref == ref:
        return None
    if job.state == PROVISIONING and not job.compute_ref:
        return None  # launched a moment ago; the runner is about to record it
    return "not the job's current machine"
