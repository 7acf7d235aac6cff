"""What a `deploy` worker does: start a deployment's server and watch it become ready, or
stop it. Each call acts for one attempt of one deployment (see lifecycle.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from services.common.cloud.instances import InstanceApi
from services.common.crypto import SecretBox
from services.common.engines import ENGINES, ensure_engine
from services.common.errors import ForgelineError, NotFound
from services.common.logging import get_logger
from services.common.timestamps import utcnow
from services.deployer import cloud, lifecycle
from services.deployer.adapters import (
    ADAPTER,
    BASE_SERVED_NAME,
    ServedAdapter,
    lora_args,
    rank_from_config,
    rank_from_folder,
)
from services.deployer.artifacts import adapter_version_dir, base_model_dir, model_version_dir
from services.deployer.catalogue import TrainerCatalogue
from services.deployer.local import LocalServers, free_port, healthy, log_tail, snapshot
from services.deployer.models import Deployment
from services.deployer.node_script import NodeAdapter
from services.deployer.server_keys import new_api_key
from services.deployer.settings import DeployerSettings
from services.deployer.states import FAILED, PENDING, READY, STARTING, upstream_served_name

log = get_logger(__name__)
POLL_SECONDS = 1.0
# While a start takes long (an engine built, a model converted), the row is touched this
# often, so the monitor can tell a slow start from a lost worker.
HEARTBEAT_SECONDS = 15.0


def log_path(settings: DeployerSettings, deployment_id: str) -> Path:
    return settings.work_dir / "deployments" / deployment_id / "server.log"


class DeploymentRunner:
    def __init__(
        self,
        *,
        engine: Engine,
        settings: DeployerSettings,
        servers: LocalServers,
        trainer: TrainerCatalogue,
        s3: Any,
        enqueue_start: Callable[[str, int], None],
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.servers = servers
        self.trainer = trainer
        self.s3 = s3
        self.enqueue_start = enqueue_start

    # --- start ------------------------------------------------------------------------

    def start(self, deployment_id: str, attempt: int) -> str:
        self.servers.reap()
        row = lifecycle.load(self.engine, deployment_id)
        if row is None or row.attempt != attempt or row.state not in (PENDING, STARTING):
            return "superseded"
        path = log_path(self.settings, deployment_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        note = _LogNote(path, self.engine, deployment_id, attempt)
        note(f"--- attempt {attempt} at {utcnow().isoformat()} ---")
        if not lifecycle.update(
            self.engine, deployment_id, attempt,
            state=STARTING, status_message="Preparing the model", starting_at=utcnow(),
        ):  # fmt: skip
            return "superseded"
        if row.is_cloud:
            return self._start_cloud(row, attempt, note)
        try:
            model_dir, served_name, lora = self._local_model(row, note)
            note("preparing the vllm engine environment")
            ensure_engine(ENGINES["vllm"], progress=note)
        except ForgelineError as error:
            return self._fail(row, attempt, error.code, error.message)
        except Exception as error:
            log.exception("could not prepare a deployment", deployment_id=deployment_id)
            message = f"Preparing the model failed: {error}"
            return self._fail(row, attempt, "prepare_failed", message)
        # Whatever an earlier attempt left running (a server that stopped answering, the
        # orphaned engine of one that was killed) goes first: it holds memory and a port.
        self.servers.stop(deployment_id, row.processes)
        host = self.settings.deployer_local_host
        port = free_port(host)
        box = SecretBox(self.settings)
        # Deployments made before local servers had keys get theirs now.
        encrypted_key = row.api_key_encrypted or box.encrypt(new_api_key())
        if not lifecycle.update(
            self.engine, deployment_id, attempt,
            host=host, port=port, processes=[], status_message="Starting the server",
            starting_at=utcnow(), api_key_encrypted=encrypted_key,
        ):  # fmt: skip
            return "superseded"
        process = self.servers.spawn(
            deployment_id, attempt,
            model_dir=model_dir,
            served_name=served_name,
            host=host, port=port,
            extra_args=[*self.settings.vllm_args, *lora],
            kv_cache_gb=self.settings.deployer_vllm_kv_cache_gb,
            log_path=path,
            cache_dir=self.settings.work_dir / "vllm-cache",
            api_key=box.decrypt(encrypted_key),
        )  # fmt: skip
        deadline = time.monotonic() + self.settings.deployer_start_timeout_seconds
        last_beat = 0.0
        while True:
            time.sleep(POLL_SECONDS)
            current = lifecycle.load(self.engine, deployment_id)
            if current is None or current.attempt != attempt or current.state != STARTING:
                self.servers.stop(deployment_id, snapshot(process.pid))
                return "superseded"
            code = process.poll()
            if code is not None:
                tail = " | ".join(log_tail(path, 3))
                reason = f"The server exited with status {code} while starting: {tail}"
                return self._start_failed(deployment_id, attempt, "server_exited", reason, [])
            if healthy(host, port):
                if lifecycle.update(
                    self.engine, deployment_id, attempt,
                    state=READY, ready_at=utcnow(), failed_restarts=0, status_message="",
                    failure_code="", failure_reason="", processes=snapshot(process.pid),
                ):  # fmt: skip
                    log.info("deployment ready", deployment_id=deployment_id, port=port)
                    return READY
                self.servers.stop(deployment_id, snapshot(process.pid))
                return "superseded"
            if time.monotonic() > deadline:
                reason = (
                    f"The server did not answer its health check within "
                    f"{self.settings.deployer_start_timeout_seconds:.0f} s."
                )
                return self._start_failed(
                    deployment_id, attempt, "start_timeout", reason, snapshot(process.pid)
                )
            if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                last_beat = time.monotonic()
                lifecycle.update(
                    self.engine, deployment_id, attempt, processes=snapshot(process.pid)
                )

    def _start_cloud(self, row: Deployment, attempt: int, note: Callable[[str], None]) -> str:
        """Launch the serving node and record it; the health monitor watches it boot (tens
        of minutes), so no worker thread waits for it."""
        try:
            source = cloud.credential_for(self.trainer, row.owner_id, row.credential_id, row.target)
            api = cloud.api_from_source(self.settings, source)
            if row.compute_ref:  # an earlier attempt's machine goes first
                self._terminate(api, row.compute_ref, note)
                if not lifecycle.update(self.engine, row.id, attempt, compute_ref="", host=""):
                    return "superseded"
            hub_id, model_url, parameters, model_name = self._cloud_model(row)
            adapters = self._cloud_adapters(row)
            api_key = SecretBox(self.settings).decrypt(row.api_key_encrypted)
            note(f"starting a machine in the {row.target.upper()} account")
            launched = cloud.launch(
                api, row, attempt,
                settings=self.settings, api_key=api_key, parameters=parameters,
                model_name=model_name, hub_id=hub_id, model_url=model_url, adapters=adapters,
            )  # fmt: skip
        except ForgelineError as error:
            note(f"could not start the machine: {error.message}")
            return self._fail(row, attempt, error.code, error.message)
        machine = launched.machine
        note(f"started {launched.ref} ({machine.label}, ${machine.usd_per_hour:.2f} an hour)")
        if not lifecycle.update(
            self.engine, row.id, attempt,
            compute_ref=launched.ref, instance_type=machine.instance_type,
            usd_per_hour=machine.usd_per_hour, host="", port=self.settings.deployer_cloud_port,
            starting_at=utcnow(),
            status_message=(
                f"Booting a {machine.label} in your {row.target.upper()} account; installing "
                "vLLM and loading the model take ten to twenty minutes."
            ),
        ):  # fmt: skip
            self._terminate(api, launched.ref, note)  # a stop overtook the launch
            return "superseded"
        return "launched"

    def _cloud_model(self, row: Deployment) -> tuple[str, str, int, str]:
        """(hub id, presigned URL of merged weights, parameters, name) of what to serve."""
        if row.base_model:
            model = self.trainer.base_model(row.base_model)
            return model.hub_id, "", int(model.parameters), model.display_name or model.id
        version = self.trainer.model_version(row.owner_id, row.model_version_id)
        base = self.trainer.base_model(version.base_model)
        if row.weights == ADAPTER:  # the base from the Hub; the adapters come beside it
            return base.hub_id, "", int(base.parameters), version.name or version.id
        if not version.merged_prefix:
            raise NotFound("model_version_not_found", "This model version has no merged model.")
        url = self._presigned(version.bucket, version.merged_prefix)
        return "", url, int(base.parameters), version.name or version.id

    def _cloud_adapters(self, row: Deployment) -> list[NodeAdapter]:
        """The adapters a serving node fetches at boot, by presigned URL like merged weights
        (the rank from the trainer's config: the archive is not opened here)."""
        found = []
        for entry in row.adapters:
            version = self.trainer.model_version(row.owner_id, entry["model_version_id"])
            url = self._presigned(version.bucket, version.adapter_prefix)
            found.append(NodeAdapter(entry["name"], url, rank_from_config(version.config_yaml)))
        return found

    def _presigned(self, bucket: str, key: str) -> str:
        return str(
            self.s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": bucket, "Key": key},
                ExpiresIn=cloud.MODEL_URL_SECONDS,
            )
        )

    def _terminate(self, api: InstanceApi, ref: str, note: Callable[[str], None]) -> None:
        kind, instance = cloud.split_ref(ref)
        if kind == api.provider and instance:
            api.terminate(instance)
            note(f"terminated {ref}")

    def _local_model(
        self, row: Deployment, note: Callable[[str], None]
    ) -> tuple[Path, str, list[str]]:
        """The folder vLLM loads, the name it serves it under, and its LoRA flags. Derived
        from the row on every attempt, so a restart serves the same adapters."""
        if row.weights != ADAPTER:
            return self._model_dir(row, note), upstream_served_name(row.name), []
        cache = self.settings.work_dir / "model-versions"
        served, base = [], ""
        for entry in row.adapters:
            version = self.trainer.model_version(row.owner_id, entry["model_version_id"])
            base = base or version.base_model
            folder = adapter_version_dir(cache, version, self.s3, note)
            # The archive's own config is the truth vLLM will check the rank against.
            rank = rank_from_folder(folder) or rank_from_config(version.config_yaml)
            served.append(ServedAdapter(entry["name"], str(folder), rank))
        model_dir = base_model_dir(self.settings.models_dir, base, note)
        return model_dir, BASE_SERVED_NAME, lora_args(served)

    def _model_dir(self, row: Deployment, note: Callable[[str], None]) -> Path:
        if row.base_model:
            return base_model_dir(self.settings.models_dir, row.base_model, note)
        version = self.trainer.model_version(row.owner_id, row.model_version_id)
        return model_version_dir(self.settings.work_dir / "model-versions", version, self.s3, note)

    def _start_failed(
        self,
        deployment_id: str,
        attempt: int,
        code: str,
        reason: str,
        processes: list[dict[str, Any]],
    ) -> str:
        self.servers.stop(deployment_id, processes)
        log.warning("deployment start failed", deployment_id=deployment_id, code=code)
        following = lifecycle.start_failed(
            self.engine, deployment_id, attempt, code, reason,
            self.settings.deployer_max_failed_restarts,
        )  # fmt: skip
        if following is None:
            return FAILED
        self.enqueue_start(deployment_id, following)
        return STARTING

    def _fail(self, row: Deployment, attempt: int, code: str, message: str) -> str:
        """Preparing failed: the model or engine is not there; retrying will not help."""
        lifecycle.update(
            self.engine, row.id, attempt,
            state=FAILED, failure_code=code, failure_reason=message[:2000], status_message="",
        )  # fmt: skip
        return FAILED

    # --- stop -------------------------------------------------------------------------

    def stop(self, deployment_id: str) -> str:
        row = lifecycle.load(self.engine, deployment_id)
        if row is None:
            return "missing"
        if row.is_cloud and row.compute_ref:
            try:
                source = self.trainer.credential_source(row.owner_id, row.credential_id)
            except NotFound:
                # The credentials were deleted: nothing can reach that account any more.
                log.error("cannot terminate: credentials gone", deployment_id=deployment_id,
                          ref=row.compute_ref)  # fmt: skip
            else:
                # A cloud that refuses raises: the task fails, the row stays `stopping`,
                # and the monitor queues the stop again.
                note = _LogNote(
                    log_path(self.settings, deployment_id), self.engine, deployment_id,
                    row.attempt,
                )  # fmt: skip
                self._terminate(cloud.api_from_source(self.settings, source), row.compute_ref, note)
        self.servers.stop(deployment_id, row.processes)
        lifecycle.stopped(self.engine, deployment_id)
        return "stopped"


class _LogNote:
    """Progress lines into the deployment's log, and a heartbeat on its row."""

    def __init__(self, path: Path, engine: Engine, deployment_id: str, attempt: int) -> None:
        self.path = path
        self.engine = engine
        self.deployment_id = deployment_id
        self.attempt = attempt
        self._beat = time.monotonic()
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, line: str) -> None:
        with self.path.open("a") as handle:
            handle.write(f"[forgeline] {line}\n")
        if time.monotonic() - self._beat > HEARTBEAT_SECONDS:
            self._beat = time.monotonic()
            lifecycle.update(self.engine, self.deployment_id, self.attempt)
