"""The `aws` and `gcp` providers: a tagged GPU instance in the user's own account whose
startup script fetches the node bootstrap script and the job's manifest by presigned URL and
runs them, exactly as the `local` provider runs them here.

The instance's own answer is only "still there or not"; how the run ended comes from the
node's reports (see JobRunner). Stopping means terminating: nothing is kept on the machine,
checkpoints and results are in the object store already.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.cloud.instances import ROLE_TAG, InstanceApi, LaunchRequest
from services.common.logging import get_logger
from services.trainer.providers.base import EXIT_FAILED, ComputeRun
from services.trainer.providers.node_script import startup_script, write_bundle

log = get_logger(__name__)
TRAINING_ROLE = "training"
ROLE_LABEL = {ROLE_TAG: TRAINING_ROLE}


@dataclass
class CloudRun:
    job_id: str
    kind: str
    instance: str

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.instance}"


@dataclass(frozen=True)
class NodePlacement:
    """Where the job's node files go in the object store, and how the node reads them."""

    s3: Any
    bucket: str
    prefix: str  # the job's prefix, "<owner>/jobs/<id>/"
    url_seconds: int


class CloudProvider:
    def __init__(
        self,
        api: InstanceApi,
        placement: NodePlacement,
        *,
        owner_id: str,
        instance_type: str,
        gpu: str,
        gpus: int,
    ) -> None:
        self.api = api
        self.name = api.provider
        self.placement = placement
        self.owner_id = owner_id
        self.instance_type, self.gpu, self.gpus = instance_type, gpu, gpus

    def prepare(self, progress: Callable[[str], None]) -> None:
        progress(
            f"Starting a {self.instance_type} in your {self.name.upper()} account; installing "
            "the training software on it takes about ten minutes."
        )

    def start(self, job_id: str, manifest: dict[str, Any]) -> CloudRun:
        bundle_url = self._put_bundle()
        manifest_url = self._put("node/manifest.json", json.dumps(manifest).encode())
        script = startup_script(job_id, bundle_url=bundle_url, manifest_url=manifest_url)
        instance = self.api.launch(
            LaunchRequest(
                job_id=job_id,
                owner_id=self.owner_id,
                instance_type=self.instance_type,
                gpu=self.gpu,
                gpus=self.gpus,
                startup_script=script,
                labels=ROLE_LABEL,
            )
        )
        return CloudRun(job_id, self.name, instance)

    def poll(self, run: ComputeRun) -> int | None:
        assert isinstance(run, CloudRun)
        state = self.api.state(run.instance)
        # A machine that stopped without its script reporting an end was interrupted (spot
        # reclaim, maintenance, a person in the console) or failed to install.
        return EXIT_FAILED if state in ("stopped", "gone") else None

    def stop(self, run: ComputeRun) -> None:
        assert isinstance(run, CloudRun)
        self.api.terminate(run.instance)
        self._forget_manifest()

    def stop_ref(self, job_id: str, ref: str) -> None:
        kind, _, instance = ref.partition(":")
        if kind == self.name and instance:
            log.info("terminating an earlier worker's instance", job_id=job_id, ref=ref)
            self.api.terminate(instance)

    # --- the node's files ------------------------------------------------------------------

    def _put(self, name: str, body: bytes) -> str:
        p = self.placement
        p.s3.put_object(Bucket=p.bucket, Key=p.prefix + name, Body=body)
        return str(
            p.s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": p.bucket, "Key": p.prefix + name},
                ExpiresIn=p.url_seconds,
            )
        )

    def _put_bundle(self) -> str:
        with tempfile.TemporaryDirectory(prefix="forgeline-bundle-") as tmp:
            bundle = write_bundle(Path(tmp) / "bootstrap.tar.gz")
            return self._put("node/bootstrap.tar.gz", bundle.read_bytes())

    def _forget_manifest(self) -> None:
        # The manifest holds the callback token and upload URLs; no one needs it any more.
        p = self.placement
        p.s3.delete_object(Bucket=p.bucket, Key=p.prefix + "node/manifest.json")
