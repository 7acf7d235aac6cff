"""Settings of the deployer (on top of the shared ones)."""

from __future__ import annotations

import ipaddress
import shlex
from pathlib import Path

from pydantic import Field, field_validator

from services.common.cloud.accounts import CloudEndpointSettings
from services.common.settings import BaseServiceSettings

# vLLM on a CPU: float32 (no native bf16 on most CPUs, and 3-5x faster than emulated bf16),
# eager mode (skips a minutes-long torch.compile at start-up), a context that fits the
# KV cache below.
DEFAULT_VLLM_ARGS = "--dtype float32 --enforce-eager --max-model-len 2048"


class DeployerSettings(BaseServiceSettings, CloudEndpointSettings):
    deployer_grpc_bind: str = "127.0.0.1:50055"
    # Base models on this machine: the same folder (and variable) the trainer uses, so the
    # bundled model is converted once for both.
    trainer_models_dir: Path | None = None
    # Logs of the servers and the unpacked fine-tuned models they serve.
    deployer_dir: Path | None = None
    # Local servers listen on this address (and the gateway reaches them there).
    deployer_local_host: str = "127.0.0.1"
    # Extra arguments of every local `vllm serve`, and the KV cache size (GiB) on a CPU.
    deployer_vllm_args: str = DEFAULT_VLLM_ARGS
    deployer_vllm_kv_cache_gb: int = Field(2, ge=1)
    # Health checks: how often, how many failures in a row make a server dead, how long a
    # start may take, and how many failed restarts in a row give a deployment up.
    deployer_health_interval_seconds: float = Field(5.0, gt=0)
    deployer_health_failures: int = Field(3, ge=1)
    deployer_start_timeout_seconds: float = Field(600.0, ge=10)
    deployer_max_failed_restarts: int = Field(3, ge=1)
    # Live deployments one user may have at once (each local one holds gigabytes of memory).
    deployer_max_per_user: int = Field(3, ge=1)

    # Cloud targets (aws, gcp): a GPU machine in the user's own account, from a stored
    # credential; the endpoints and images are the trainer's (CloudEndpointSettings).
    # A node whose vLLM has not answered /health by then is terminated: booting, installing
    # vLLM and downloading the model take ten to twenty minutes.
    deployer_cloud_boot_timeout_seconds: float = Field(40 * 60, ge=5)
    # The port vLLM listens on there (opened to the platform; requests need the key).
    deployer_cloud_port: int = Field(8000, ge=1, le=65535)
    # Where that port is open from (CIDRs, comma- or space-separated): the AWS security group
    # and the GCP firewall rule admit only these. Set it to the gateway's egress addresses
    # where they are known; anywhere (the default) is acceptable only because each node's
    # vLLM refuses every request without its deployment's own key. (No TLS to nodes yet.)
    deployer_cloud_source_ranges: str = "0.0.0.0/0"
    # A cloud deployment with no request for this long is stopped (each one may set its own).
    deployer_idle_minutes: float = Field(30.0, gt=0)
    # For tests only: reach every cloud node at this address instead of its public IP.
    deployer_cloud_host_override: str = ""
    # How often tagged serving instances in every stored account are matched against
    # deployments (the trainer's reaper uses the same variable for training instances).
    reaper_interval_seconds: int = Field(300, ge=1)

    @field_validator("deployer_cloud_source_ranges")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        ranges = [
            str(ipaddress.ip_network(c, strict=False)) for c in value.replace(",", " ").split()
        ]
        if not ranges:
            raise ValueError("name at least one CIDR range, e.g. 0.0.0.0/0")
        return ",".join(ranges)

    @property
    def cloud_source_ranges(self) -> tuple[str, ...]:
        return tuple(self.deployer_cloud_source_ranges.split(","))

    @property
    def models_dir(self) -> Path:
        return (self.trainer_models_dir or self.data_dir / "models").absolute()

    @property
    def work_dir(self) -> Path:
        return (self.deployer_dir or self.data_dir / "deployer").absolute()

    @property
    def vllm_args(self) -> list[str]:
        return shlex.split(self.deployer_vllm_args)
