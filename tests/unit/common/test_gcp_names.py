"""The pure helpers behind GceInstances: names, accelerators, labels and states."""

from __future__ import annotations

import re

import pytest

from services.common.cloud.gcp import (
    accelerator_type,
    bundles_gpus,
    firewall_name,
    firewall_rule,
    instance_labels,
    instance_name,
    instance_state,
    label_key,
    label_value,
    rule_matches,
)
from services.common.cloud.instances import JOB_TAG, OWNER_TAG, LaunchRequest
from services.common.errors import InvalidInput

GCE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


def request(**changes: object) -> LaunchRequest:
    fields: dict[str, object] = {
        "job_id": "0123456789abcdef0123456789abcdef",
        "owner_id": "owner",
        "instance_type": "g2-standard-8",
        "gpu": "NVIDIA L4",
        "gpus": 1,
        "startup_script": "#!/bin/bash\n",
    }
    fields.update(changes)
    return LaunchRequest(**fields)  # type: ignore[arg-type]


def test_the_default_name_comes_from_the_job_id() -> None:
    assert instance_name(request()) == "forgeline-0123456789abcdef0123"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("My Fine-Tune", "my-fine-tune"),
        ("7b run", "forgeline-7b-run"),
        ("__", "forgeline"),
        ("Llama_3.1 (8B)!", "llama-3-1-8b"),
        ("a" * 80, "a" * 63),
        ("x" * 62 + "-y", "x" * 62),
    ],
)
def test_names_are_made_valid_for_gce(name: str, expected: str) -> None:
    made = instance_name(request(name=name))
    assert made == expected
    assert GCE_NAME.fullmatch(made)


def test_job_ids_of_any_shape_give_valid_names() -> None:
    for job_id in ["ABC", "-", "9" * 40, "Ünïcode-job"]:
        assert GCE_NAME.fullmatch(instance_name(request(job_id=job_id))), job_id


@pytest.mark.parametrize(
    ("gpu", "accelerator"),
    [
        ("NVIDIA L4", "nvidia-l4"),
        ("NVIDIA A100 40GB", "nvidia-tesla-a100"),
        ("NVIDIA A100 80GB", "nvidia-a100-80gb"),
        ("NVIDIA T4", "nvidia-tesla-t4"),
        ("nvidia  t4", "nvidia-tesla-t4"),
        ("nvidia-tesla-v100", "nvidia-tesla-v100"),
    ],
)
def test_gpu_names_map_to_accelerator_types(gpu: str, accelerator: str) -> None:
    assert accelerator_type(gpu) == accelerator


def test_an_unknown_gpu_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        accelerator_type("GeForce 256")
    assert caught.value.code == "cloud_gpu_unknown"
    assert "NVIDIA L4" in caught.value.message


def test_which_machine_families_bundle_their_gpus() -> None:
    assert all(map(bundles_gpus, ["a2-highgpu-1g", "a3-highgpu-8g", "g2-standard-8"]))
    assert not any(map(bundles_gpus, ["n1-standard-8", "n1-highmem-16", "e2-standard-4"]))


def test_labels_are_sanitised_and_the_forgeline_tags_win() -> None:
    assert label_value("User@Example.COM") == "user-example-com"
    assert label_value("x" * 100) == "x" * 63
    assert label_key("9lives") == "x-9lives"
    assert label_key("Cost Centre") == "cost-centre"
    labels = instance_labels(
        request(owner_id="Owner_ID-7", labels={JOB_TAG: "spoofed", "Team": "ML"})
    )
    assert labels == {
        JOB_TAG: "0123456789abcdef0123456789abcdef",
        OWNER_TAG: "owner_id-7",
        "team": "ml",
    }


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("PROVISIONING", "starting"),
        ("STAGING", "starting"),
        ("RUNNING", "running"),
        ("STOPPING", "stopped"),
        ("STOPPED", "stopped"),
        ("SUSPENDING", "stopped"),
        ("SUSPENDED", "stopped"),
        ("TERMINATED", "stopped"),
        ("SOMETHING_NEW", "starting"),  # exists, may cost money: never "gone"
    ],
)
def test_gce_statuses_map_to_states(status: str, state: str) -> None:
    assert instance_state(status) == state


def test_a_firewall_rule_opens_tcp_ports_to_instances_tagged_with_its_name() -> None:
    assert firewall_name((8000,)) == "forgeline-serving-8000"
    assert firewall_name((9000, 8000, 8000)) == "forgeline-serving-8000-9000"
    assert GCE_NAME.fullmatch(firewall_name(tuple(range(60000, 60020))))
    rule = firewall_rule((8000,), ("203.0.113.0/24", "10.0.0.0/8"))
    assert rule.name == "forgeline-serving-8000"
    assert rule.target_tags == ["forgeline-serving-8000"]
    assert [(a.I_p_protocol, list(a.ports)) for a in rule.allowed] == [("tcp", ["8000"])]
    assert list(rule.source_ranges) == ["10.0.0.0/8", "203.0.113.0/24"]
    assert rule.direction == "INGRESS" and rule.network == "global/networks/default"


def test_an_existing_rule_matches_only_when_it_admits_the_same() -> None:
    wanted = firewall_rule((8000,), ("0.0.0.0/0",))
    # GCE answers with the network as a full URL and its own fields filled in.
    current = firewall_rule((8000,), ("0.0.0.0/0",))
    current.network = "https://www.googleapis.com/compute/v1/projects/p/global/networks/default"
    current.id = 42
    assert rule_matches(current, wanted)
    narrower = firewall_rule((8000,), ("198.51.100.7/32",))
    assert not rule_matches(current, narrower)
    assert not rule_matches(firewall_rule((8001,), ("0.0.0.0/0",)), wanted)
    disabled = firewall_rule((8000,), ("0.0.0.0/0",))
    disabled.disabled = True
    assert not rule_matches(disabled, wanted)
