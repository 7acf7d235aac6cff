"""Which provider runs a job: the local machine, or the cloud account its credential names."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from services.trainer import catalogue, credentials
from services.trainer.models import TrainingJob
from services.trainer.providers.base import ComputeProvider
from services.trainer.providers.cloud import CloudProvider, NodePlacement
from services.trainer.providers.local import LocalProvider
from services.trainer.settings import TrainerSettings


def provider_for(
    job: TrainingJob, *, engine: Engine, s3: Any, settings: TrainerSettings, url_seconds: int
) -> ComputeProvider:
    if job.provider == "local":
        return LocalProvider(settings.jobs_dir)
    # A credential deleted since the job was created fails the job with credential_not_found.
    credential = credentials.get(engine, job.owner_id, job.credential_id)
    instance = catalogue.get_instance(job.provider, job.instance_type)  # type: ignore[arg-type]
    return CloudProvider(
        credentials.api_for(settings, credential),
        NodePlacement(s3, settings.s3_bucket, f"{job.owner_id}/jobs/{job.id}/", url_seconds),
        owner_id=job.owner_id,
        instance_type=instance.instance_type,
        gpu=instance.gpu,
        gpus=instance.gpus,
    )
