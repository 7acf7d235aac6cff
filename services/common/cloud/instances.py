"""What every cloud's instance API offers the platform, whatever the cloud.

An instance is always labelled with the job (or deployment) it serves, so that a reaper can
find and terminate any instance whose job is no longer running: the user pays for GPU time,
and an instance left running by mistake is the costliest bug the platform can have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

# The tag (AWS) / label (GCP) key carrying the job id. GCP label keys allow only lowercase
# letters, digits, '-' and '_', so one spelling serves both.
JOB_TAG = "forgeline-job-id"
OWNER_TAG = "forgeline-owner-id"
ROLE_TAG = "forgeline-role"  # what the instance is for: each reaper only judges its own

# starting: booting or pending; running; stopped: shut down but still billed for its disk
# (and on GCP still holding its GPU reservation); gone: terminated or deleted.
InstanceState = Literal["starting", "running", "stopped", "gone"]


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    job_id: str
    owner_id: str
    instance_type: str  # "g5.xlarge" on AWS, "g2-standard-8" on GCP
    gpu: str  # "NVIDIA L4": GCP attaches accelerators by type for some machine families
    gpus: int
    startup_script: str  # a bash script: cloud-init user data / GCE startup-script
    disk_gb: int = 200
    name: str = ""  # a readable instance name; defaults to one derived from the job id
    labels: dict[str, str] = field(default_factory=dict)
    # TCP ports the platform must reach on the instance from outside (a serving node's API);
    # training nodes only call out and open none.
    open_ports: tuple[int, ...] = ()
    # Where those ports are reachable from (CIDR ranges): the platform's own addresses where
    # the operator knows them. Anywhere by default, which is acceptable only because every
    # port opened today is a vLLM server that refuses requests without its deployment's key.
    open_to: tuple[str, ...] = ("0.0.0.0/0",)


@dataclass(frozen=True, slots=True)
class TaggedInstance:
    ref: str  # the instance id (AWS) or name (GCP)
    job_id: str
    state: InstanceState
    owner_id: str = ""  # OWNER_TAG: one cloud account may serve several users
    role: str = ""  # ROLE_TAG: "training" or "serving"


class InstanceApi(Protocol):
    """One cloud account (a stored credential) in one region or zone."""

    provider: str

    def check(self) -> None:
        """A dry run: raise ForgelineError (cloud_credentials_invalid, cloud_access_denied,
        cloud_unreachable) unless these credentials may launch instances here."""

    def launch(self, request: LaunchRequest) -> str:
        """Start the instance; return its ref. Raises ForgelineError with a clear code when
        the cloud refuses (quota, capacity, permissions)."""

    def state(self, ref: str) -> InstanceState: ...

    def address(self, ref: str) -> str:
        """The instance's public IP address; empty while it has none (booting, or gone)."""

    def terminate(self, ref: str) -> None:
        """Terminate or delete it; an instance already gone is not an error."""

    def tagged(self) -> list[TaggedInstance]:
        """Every instance carrying JOB_TAG that is not gone."""
