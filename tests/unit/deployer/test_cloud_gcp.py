"""The gcp target's pure rules: what a serving node is launched with (machine, labels, the
port and where it is open from), the source-range setting, and the reaper's view of GCE."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.common.cloud.instances import ROLE_TAG, LaunchRequest
from services.deployer import cloud
from services.deployer.models import Deployment
from services.deployer.reaper import judged, why_not_wanted
from services.deployer.settings import DeployerSettings
from services.deployer.states import check_target


@dataclass
class RecordingApi:
    """An InstanceApi that only records what it is asked to launch."""

    provider: str = "gcp"
    launched: list[LaunchRequest] = field(default_factory=list)

    def launch(self, request: LaunchRequest) -> str:
        self.launched.append(request)
        return request.name


def test_gcp_is_a_target() -> None:
    assert check_target("gcp") == "gcp"


def test_a_gcp_serving_node_is_labelled_and_opens_the_port_to_the_configured_ranges(
    tmp_path: Path,
) -> None:
    settings = DeployerSettings(
        data_dir=tmp_path,
        deployer_cloud_port=8123,
        deployer_cloud_source_ranges="203.0.113.0/24, 198.51.100.7",
    )
    row = Deployment(id="ab" * 16, owner_id="cd" * 16, name="tutor", target="gcp")
    api = RecordingApi()

    launched = cloud.launch(
        api, row, 3, settings=settings, api_key="fl-node-key", parameters=135_000_000,  # type: ignore[arg-type]
        model_name="SmolLM2", hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    )  # fmt: skip

    (request,) = api.launched
    assert launched.ref == f"gcp:fl-{row.id[:12]}-3"
    assert launched.machine.instance_type == request.instance_type == "g2-standard-8"
    assert request.gpu == "NVIDIA L4" and request.gpus == 1
    assert request.job_id == row.id and request.owner_id == row.owner_id
    assert request.labels == {ROLE_TAG: "serving"}
    assert request.open_ports == (8123,)
    assert request.open_to == ("203.0.113.0/24", "198.51.100.7/32")
    assert "--api-key fl-node-key" in request.startup_script
    assert "--port 8123" in request.startup_script


def test_source_ranges_are_checked_cidrs(tmp_path: Path) -> None:
    assert DeployerSettings(data_dir=tmp_path).cloud_source_ranges == ("0.0.0.0/0",)
    v6 = DeployerSettings(data_dir=tmp_path, deployer_cloud_source_ranges="2001:db8::/32")
    assert v6.cloud_source_ranges == ("2001:db8::/32",)
    for bad in ("", "10.0.0.0/33", "gateway.example"):
        with pytest.raises(ValidationError):
            DeployerSettings(data_dir=tmp_path, deployer_cloud_source_ranges=bad)


def test_the_reaper_judges_gce_instances_by_their_gcp_ref() -> None:
    row = Deployment(
        id="ef" * 16, owner_id="o" * 32, name="x", target="gcp", state="ready",
        compute_ref="gcp:fl-efefefefefef-1",
    )  # fmt: skip
    assert judged("serving", "o" * 32, "o" * 32)
    assert why_not_wanted(row, "o" * 32, "gcp:fl-efefefefefef-1") is None
    assert why_not_wanted(row, "o" * 32, "gcp:fl-efefefefefef-0") == (
        "not the deployment's current machine"
    )
    assert why_not_wanted(row, "o" * 32, "aws:fl-efefefefefef-1") is not None
