"""Cloud targets: a GPU machine in the user's own account, started from one of their stored
credentials with the same instance API and tags as training (`forgeline-role: serving`).

The credential lives in the trainer; the deployer asks for it over an internal RPC and gets
the secret still encrypted with the platform key, which it shares, and decrypts it here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from forgeline.v1 import trainer_pb2

from services.common.cloud.accounts import instance_api
from services.common.cloud.instances import ROLE_TAG, InstanceApi, LaunchRequest
from services.common.cloud.machines import GpuInstance, serving_instance
from services.common.crypto import SecretBox
from services.common.errors import InvalidInput
from services.deployer.adapters import BASE_SERVED_NAME
from services.deployer.catalogue import TrainerCatalogue
from services.deployer.models import Deployment
from services.deployer.node_script import NodeAdapter, ServingNode, startup_script
from services.deployer.settings import DeployerSettings
from services.deployer.states import upstream_served_name

SERVING_ROLE = "serving"
ROLE_LABEL = {ROLE_TAG: SERVING_ROLE}
# A fine-tuned version's weights are fetched once, at boot; the URL outlives a slow boot.
MODEL_URL_SECONDS = 24 * 3600


def api_from_source(
    settings: DeployerSettings, source: trainer_pb2.CredentialSource
) -> InstanceApi:
    secret: dict[str, Any] = json.loads(SecretBox(settings).decrypt(source.secret_encrypted))
    credential = source.credential
    return instance_api(settings, credential.kind, credential.location, secret)


def credential_for(
    trainer: TrainerCatalogue, owner_id: str, credential_id: str, target: str
) -> trainer_pb2.CredentialSource:
    """The owner's credential for `target`, or a clear error (404 for another user's)."""
    if not credential_id:
        raise InvalidInput(
            "credential_required",
            f"Name the stored {target.upper()} credentials to deploy with (credential_id); "
            "add them at POST /api/v1/credentials.",
        )
    source = trainer.credential_source(owner_id, credential_id)
    if source.credential.kind != target:
        raise InvalidInput(
            "credential_kind_mismatch",
            f"These are {source.credential.kind} credentials; deploying to {target} needs "
            f"{target} ones.",
        )
    return source


def machine_for(target: str, parameters: int, model_name: str) -> GpuInstance:
    machine = serving_instance(target, parameters)
    if machine is None:
        raise InvalidInput(
            "no_machine_fits",
            f"No {target.upper()} machine the platform knows has GPU memory enough to serve "
            f"{model_name}.",
        )
    return machine


def split_ref(ref: str) -> tuple[str, str]:
    """ "aws:i-0abc" -> ("aws", "i-0abc")."""
    kind, _, instance = ref.partition(":")
    return kind, instance


@dataclass(frozen=True)
class Launched:
    ref: str  # "aws:i-0abc...", "gcp:fl-0123abcd4567-1"
    machine: GpuInstance


def launch(
    api: InstanceApi,
    row: Deployment,
    attempt: int,
    *,
    settings: DeployerSettings,
    api_key: str,
    parameters: int,
    model_name: str,
    hub_id: str = "",
    model_url: str = "",
    adapters: Sequence[NodeAdapter] = (),
) -> Launched:
    """Start the serving node of one attempt of a deployment (with `adapters`: the hub
    model is their base, served under a private name; each adapter under its own)."""
    machine = machine_for(api.provider, parameters, model_name)
    script = startup_script(
        ServingNode(
            deployment_id=row.id,
            served_name=BASE_SERVED_NAME if adapters else upstream_served_name(row.name),
            api_key=api_key,
            port=settings.deployer_cloud_port,
            hub_id=hub_id,
            model_url=model_url,
            gpus=machine.gpus,
            adapters=tuple(adapters),
        )
    )
    instance = api.launch(
        LaunchRequest(
            job_id=row.id,
            owner_id=row.owner_id,
            instance_type=machine.instance_type,
            gpu=machine.gpu,
            gpus=machine.gpus,
            startup_script=script,
            disk_gb=100,
            # Unique per deployment and attempt: a restart starts a new machine, and EC2's
            # idempotency token ("forgeline-<id>-<name>", 64 characters at most) must differ.
            name=f"fl-{row.id[:12]}-{attempt}",
            labels=ROLE_LABEL,
            open_ports=(settings.deployer_cloud_port,),
            open_to=settings.cloud_source_ranges,
        )
    )
    return Launched(f"{api.provider}:{instance}", machine)


class Accounts:
    """Instance APIs by (owner, credential), kept for a minute: the monitor asks every few
    seconds, and building a client (and fetching the credential) each time would be wasteful.
    A credential deleted in the trainer stops being used within the minute."""

    def __init__(
        self,
        settings: DeployerSettings,
        trainer: TrainerCatalogue,
        ttl_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.trainer = trainer
        self.ttl = ttl_seconds
        self.clock = clock
        self._apis: dict[tuple[str, str], tuple[float, InstanceApi]] = {}

    def api(self, row: Deployment) -> InstanceApi:
        key = (row.owner_id, row.credential_id)
        entry = self._apis.get(key)
        if entry is not None and self.clock() < entry[0]:
            return entry[1]
        source = credential_for(self.trainer, row.owner_id, row.credential_id, row.target)
        api = api_from_source(self.settings, source)
        self._apis[key] = (self.clock() + self.ttl, api)
        return api

    def terminate(self, row: Deployment) -> None:
        kind, instance = split_ref(row.compute_ref)
        api = self.api(row)
        if kind == api.provider and instance:
            api.terminate(instance)
