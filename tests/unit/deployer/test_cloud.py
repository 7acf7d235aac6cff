"""Cloud deployments' pure rules: which machine serves a model, the serving node's startup
script, the cost guard sentence, the idle clock, and what the serving reaper may judge."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest

from services.common.cloud.machines import fits_for_serving, serving_instance
from services.common.timestamps import utcnow
from services.deployer.models import Deployment
from services.deployer.node_script import VLLM_REQUIREMENT, ServingNode, startup_script
from services.deployer.reaper import judged, why_not_wanted
from services.deployer.states import cost_guard, idle_since, is_idle, minutes_text


def test_the_cheapest_machine_that_holds_the_model_serves_it() -> None:
    small = serving_instance("aws", 135_000_000)
    assert small is not None and small.instance_type == "g5.xlarge"
    # 8B in bf16 is 16 GB: still one A10G (24 GB), with room for the KV cache.
    eight = serving_instance("aws", 8_030_000_000)
    assert eight is not None and eight.instance_type == "g5.xlarge"
    # 14B (28 GB) needs more than one A10G: the L40S (48 GB) is cheaper than four A10Gs.
    fourteen = serving_instance("aws", 14_000_000_000)
    assert fourteen is not None and fourteen.instance_type == "g6e.xlarge"
    seventy = serving_instance("aws", 70_000_000_000)
    assert seventy is not None and seventy.gpus > 1 and fits_for_serving(70_000_000_000, seventy)
    assert serving_instance("aws", 400_000_000_000) is None
    gcp = serving_instance("gcp", 135_000_000)
    assert gcp is not None and gcp.instance_type == "g2-standard-8"


def node(**extra: object) -> ServingNode:
    fields: dict[str, object] = {
        "deployment_id": "d" * 32,
        "served_name": "tutor",
        "api_key": "fl-node-secret's key",
        "port": 8000,
        "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
    }
    fields.update(extra)
    return ServingNode(**fields)  # type: ignore[arg-type]


def test_the_startup_script_serves_the_model_behind_its_key_and_powers_off() -> None:
    script = startup_script(node())
    assert f"install -q {VLLM_REQUIREMENT}" in script
    assert "MODEL=HuggingFaceTB/SmolLM2-135M-Instruct" in script
    assert '"$WORK/venv/bin/vllm" serve "$MODEL"' in script
    assert "--api-key 'fl-node-secret'\"'\"'s key'" in script  # quoted for the shell
    assert "--port 8000" in script and "--host 0.0.0.0" in script
    assert "--served-model-name tutor" in script
    assert "trap 'sync; shutdown -h now' EXIT" in script
    subprocess.run(["bash", "-n"], input=script.encode(), check=True)


def test_a_fine_tuned_version_is_fetched_by_its_presigned_url() -> None:
    url = "https://store.example/b/merged.tar.gz?X-Amz-Signature=abc&X-Amz-Expires=60"
    script = startup_script(node(hub_id="", model_url=url, gpus=4))
    assert f"'{url}'" in script
    assert 'tar -xzf "$WORK/model.tar.gz" -C "$WORK/model"' in script
    assert 'MODEL="$WORK/model"' in script
    assert "--tensor-parallel-size 4" in script
    subprocess.run(["bash", "-n"], input=script.encode(), check=True)
    with pytest.raises(ValueError):
        startup_script(node(hub_id="", model_url=""))


def test_the_cost_guard_sentence() -> None:
    assert (
        cost_guard(target="aws", idle_minutes=30, usd_per_hour=1.006)
        == "Stops by itself after 30 idle minutes; costs about $1.01 an hour while running."
    )
    assert cost_guard(target="local", idle_minutes=30, usd_per_hour=0) == ""
    assert minutes_text(1) == "1 idle minute"
    assert minutes_text(1.5) == "1.5 idle minutes"
    assert minutes_text(0.1) == "6 idle seconds"


def test_the_idle_clock() -> None:
    now = utcnow()
    ready = now - timedelta(minutes=40)
    used = now - timedelta(minutes=10)
    assert idle_since(ready, used) == used
    assert idle_since(ready, None) == ready
    assert is_idle(idle_minutes=30, ready_at=ready, last_used_at=None, now=now)
    assert not is_idle(idle_minutes=30, ready_at=ready, last_used_at=used, now=now)
    assert not is_idle(idle_minutes=0, ready_at=ready, last_used_at=None, now=now)
    assert not is_idle(idle_minutes=30, ready_at=None, last_used_at=None, now=now)


def test_what_the_serving_reaper_judges() -> None:
    assert judged("serving", "owner", "owner")
    assert judged("serving", "", "owner")
    assert not judged("training", "owner", "owner")  # the trainer's reaper judges those
    assert not judged("serving", "someone-else", "owner")  # a shared account
    row = Deployment(owner_id="owner", name="t", target="aws", state="ready", compute_ref="aws:i-1")
    assert why_not_wanted(row, "owner", "aws:i-1") is None
    assert why_not_wanted(row, "owner", "aws:i-2") == "not the deployment's current machine"
    assert why_not_wanted(row, "intruder", "aws:i-1") == "no such deployment"
    assert why_not_wanted(None, "owner", "aws:i-1") == "no such deployment"
    launching = Deployment(owner_id="owner", name="t", target="aws", state="starting")
    assert why_not_wanted(launching, "owner", "aws:i-3") is None
    for state in ("stopping", "stopped", "failed", "pending"):
        ended = Deployment(
            owner_id="owner", name="t", target="aws", state=state, compute_ref="aws:i-1"
        )
        assert why_not_wanted(ended, "owner", "aws:i-1") == f"deployment {state}"
