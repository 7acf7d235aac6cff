"""Settings of the trainer (on top of the shared ones)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.common.cloud.accounts import CloudEndpointSettings
from services.common.settings import BaseServiceSettings
from services.trainer.result_uploads import S3_SINGLE_UPLOAD_MAX_BYTES


class TrainerSettings(BaseServiceSettings, CloudEndpointSettings):
    trainer_grpc_bind: str = "127.0.0.1:50054"
    # Where base models live once on this machine (the bundled one is converted here once).
    trainer_models_dir: Path | None = None
    # Datasets are inspected this many at a time, beside the gRPC API.
    inspection_workers: int = Field(1, ge=1, le=8)
    # The largest checkpoint or artefact archive a training machine may store: its upload
    # form says so and the object store enforces it (services/trainer/result_uploads.py).
    # At most S3's 5 GiB for one upload.
    trainer_result_max_bytes: int = Field(
        S3_SINGLE_UPLOAD_MAX_BYTES, ge=1024, le=S3_SINGLE_UPLOAD_MAX_BYTES
    )
    # Each inspection runs in a child process, stopped past this memory (resident) or time:
    # the dataset then ends `failed` saying so (a small Parquet file can expand a thousandfold).
    inspection_max_memory_mb: int = Field(2048, ge=256)
    inspection_timeout_seconds: float = Field(600, ge=5)
    # The first problems kept and shown; all are counted.
    max_problems_shown: int = Field(20, ge=1, le=200)

    # Where the training machine sends its events (the gateway's public address).
    public_url: str = "http://127.0.0.1:8000"
    # The GSM8K questions jobs are evaluated on (the first `benchmark_sample` of them).
    gsm8k_path: Path = Path(__file__).resolve().parents[2].parent / "shared/data/gsm8k/test.jsonl"
    # The longest answer generated per benchmark question, for the base and the tuned model:
    # GSM8K's worked answers need about 256 tokens (tests lower it: they check the path).
    trainer_benchmark_max_new_tokens: int = Field(256, ge=8, le=4096)
    # Where local runs keep their manifest, working folder and log.
    trainer_jobs_dir: Path | None = None

    # Cloud training in the user's own account: the endpoints and images are shared with
    # deployments (CloudEndpointSettings, services/common/cloud/accounts.py).
    # A cloud node that has not reported in by then is given up on (and terminated): booting
    # and installing axolotl takes about ten minutes.
    cloud_boot_timeout_seconds: int = Field(45 * 60, ge=30)
    # How often tagged instances in every stored account are matched against running jobs.
    reaper_interval_seconds: int = Field(300, ge=1)
    # A worker holds a job's lease this long and renews it every third of it; a crashed
    # worker's job is taken over once it runs out.
    trainer_lease_seconds: int = Field(60, ge=3)

    @property
    def jobs_dir(self) -> Path:
        return self.trainer_jobs_dir or self.data_dir / "trainer" / "jobs"

    @property
    def models_dir(self) -> Path:
        return self.trainer_models_dir or self.data_dir / "models"
