"""What a `deploy` worker does: start a deployment's server and watch it become ready, or
stop it. Each call acts for one attempt of one deployment (see lifecycle.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from services.common.engines import ENGINES, ensure_engine
from services.common.errors import ForgelineError
from services.common.logging import get_logger
from services.common.timestamps import utcnow
from services.deployer import lifecycle
from services.deployer.artifacts import base_model_dir, model_version_dir
from services.deployer.catalogue import TrainerCatalogue
from services.deployer.local import LocalServers, free_port, healthy, log_tail, snapshot
from services.deployer.models import Deployment
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
        try:
            model_dir = self._model_dir(row, note)
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
        if not lifecycle.update(
            self.engine, deployment_id, attempt,
            host=host, port=port, processes=[], status_message="Starting the server",
            starting_at=utcnow(),
        ):  # fmt: skip
            return "superseded"
        process = self.servers.spawn(
            deployment_id, attempt,
            model_dir=model_dir,
            served_name=upstream_served_name(row.name),
            host=host, port=port,
            extra_args=self.settings.vllm_args,
            kv_cache_gb=self.settings.deployer_vllm_kv_cache_gb,
            log_path=path,
            cache_dir=self.settings.work_dir / "vllm-cache",
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

    def __call__(self, line: str) -> None:
        with self.path.open("a") as handle:
            handle.write(f"[forgeline] {line}\n")
        if time.monotonic() - self._beat > HEARTBEAT_SECONDS:
            self._beat = time.monotonic()
            lifecycle.update(self.engine, self.deployment_id, self.attempt)
