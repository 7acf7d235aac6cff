"""LoRA adapter deployments' pure rules: the weights choice and what is refused, the adapter
names, the rank and flags vLLM gets, the served name a `model` resolves to, the adapter
archive, and the cloud node's script."""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.common.errors import InvalidInput, NotFound
from services.deployer.adapters import (
    BASE_SERVED_NAME,
    MAX_ADAPTERS,
    ServedAdapter,
    adapter_versions,
    check_adapter_request,
    check_weights,
    lora_args,
    max_lora_rank,
    name_adapters,
    rank_from_config,
    rank_from_folder,
    served_name,
)
from services.deployer.artifacts import COMPLETE_MARKER, adapter_version_dir
from services.deployer.models import Deployment
from services.deployer.node_script import NodeAdapter, ServingNode, startup_script
from services.deployer.runner import DeploymentRunner
from services.deployer.servicer import pick
from services.deployer.settings import DeployerSettings
from services.deployer.states import NAME_PATTERN


@dataclass
class Version:
    id: str
    name: str = ""
    base_model: str = "smollm2-135m-instruct"
    adapter_prefix: str = "u/jobs/j/artefacts/adapter.tar.gz"
    merged_prefix: str = "u/jobs/j/artefacts/merged.tar.gz"
    config_yaml: str = "adapter: lora\nlora_r: 8\n"
    bucket: str = "forgeline"


@dataclass
class Base:
    id: str = "smollm2-135m-instruct"
    display_name: str = "SmolLM2 135M Instruct"
    gated: bool = False
    available_locally: bool = True


class Catalogue:
    def __init__(self, versions: list[Version], base: Base | None = None) -> None:
        self.versions = {v.id: v for v in versions}
        self.base = base or Base()

    def model_version(self, owner_id: str, version_id: str) -> Version:
        if version_id not in self.versions:
            raise NotFound("model_version_not_found", "There is no such model version.")
        return self.versions[version_id]

    def base_model(self, model_id: str) -> Base:
        return self.base


def code_of(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        call(*args, **kwargs)
    assert caught.value.message
    return caught.value.code


def test_weights_default_to_merged_and_unknown_ones_are_refused() -> None:
    assert check_weights("") == "merged"
    assert check_weights("adapter") == "adapter"
    assert code_of(check_weights, "lora") == "invalid_weights"


def test_what_an_adapter_request_cannot_ask_for() -> None:
    ok: dict[str, Any] = {"weights": "adapter", "base_model": ""}
    check_adapter_request(**ok, extra_adapters=MAX_ADAPTERS - 1)
    check_adapter_request(weights="merged", base_model="x", extra_adapters=0)
    refused = code_of(check_adapter_request, weights="adapter", base_model="x", extra_adapters=0)
    assert refused == "adapter_needs_model_version"
    assert (
        code_of(check_adapter_request, **{**ok, "weights": "merged"}, extra_adapters=1)
        == "extra_adapters_need_adapter_weights"
    )
    assert code_of(check_adapter_request, **ok, extra_adapters=MAX_ADAPTERS) == "too_many_adapters"


def test_the_versions_of_one_server_are_checked() -> None:
    first, second = Version("v1", "tutor"), Version("v2", "poet")
    catalogue = Catalogue([first, second])
    assert adapter_versions(catalogue, "u", first, "local", ["v2"]) == [first, second]
    full = Version("v3", "full", adapter_prefix="")
    other_base = Version("v4", "big", base_model="llama-3-8b-instruct")
    catalogue = Catalogue([first, second, full, other_base])
    assert code_of(adapter_versions, catalogue, "u", full, "local", []) == (
        "model_version_has_no_adapter"
    )
    assert code_of(adapter_versions, catalogue, "u", first, "local", ["v3"]) == (
        "model_version_has_no_adapter"
    )
    assert code_of(adapter_versions, catalogue, "u", first, "local", ["v4"]) == (
        "adapter_base_mismatch"
    )
    assert code_of(adapter_versions, catalogue, "u", first, "local", ["v2", "v2"]) == (
        "duplicate_adapter"
    )
    with pytest.raises(NotFound):  # another user's version looks like a missing one
        adapter_versions(catalogue, "u", first, "local", ["someone-elses"])
    remote = Catalogue([first], Base(available_locally=False))
    assert code_of(adapter_versions, remote, "u", first, "local", []) == (
        "model_not_available_locally"
    )
    adapter_versions(remote, "u", first, "aws", [])  # a cloud node downloads the base
    gated = Catalogue([first], Base(gated=True))
    assert code_of(adapter_versions, gated, "u", first, "aws", []) == "model_gated"


def test_adapter_names_are_unique_and_the_first_is_the_deployment_s() -> None:
    versions = [Version("v1", "Tutor"), Version("v2", "My Poet"), Version("v3", "tutor")]
    named = name_adapters("tutor", versions, ["", "verse"], taken={"my-poet"})
    assert named[0] == {"model_version_id": "v1", "name": "tutor"}
    assert named[1]["model_version_id"] == "v2"
    assert named[1]["name"].startswith("my-poet-")  # taken: made unique
    assert named[2] == {"model_version_id": "v3", "name": "verse"}
    assert (
        code_of(name_adapters, "tutor", versions[:2], ["tutor"], taken=set())
        == "deployment_name_taken"
    )
    assert code_of(name_adapters, "t", versions[:2], ["bad name"], taken=set()) == (
        "invalid_deployment_name"
    )
    # The base's private name can never be a caller's name.
    assert not NAME_PATTERN.match(BASE_SERVED_NAME)


def test_ranks_round_up_to_what_vllm_accepts() -> None:
    assert max_lora_rank([8]) == 8
    assert max_lora_rank([4, 8]) == 8
    assert max_lora_rank([17]) == 32
    assert max_lora_rank([0]) == 16  # unknown: vLLM's default
    assert max_lora_rank([300]) == 320
    assert code_of(max_lora_rank, [1024]) == "adapter_rank_too_large"
    assert rank_from_config("adapter: lora\nlora_r: 32\n") == 32
    assert rank_from_config("base_model: x\n") == 0
    assert rank_from_config(": not yaml: [") == 0


def test_lora_flags_name_every_adapter_in_json() -> None:
    args = lora_args(
        [ServedAdapter("tutor", "/data/v1/adapter", 8), ServedAdapter("poet", "/a=b,c", 32)]
    )
    flags = ["--enable-lora", "--max-loras", "2", "--max-lora-rank", "32", "--lora-modules"]
    assert args[:6] == flags
    assert [json.loads(a) for a in args[6:]] == [
        {"name": "tutor", "path": "/data/v1/adapter"},
        {"name": "poet", "path": "/a=b,c"},  # '=' and ',' are safe in the JSON form
    ]


def test_a_model_resolves_to_its_adapter_s_served_name() -> None:
    adapters = [
        {"model_version_id": "v1", "name": "tutor"},
        {"model_version_id": "v2", "name": "poet"},
    ]
    kwargs: dict[str, Any] = {"weights": "adapter", "deployment_name": "tutor"}
    assert served_name(**kwargs, adapters=adapters, model="poet") == "poet"
    assert served_name(**kwargs, adapters=adapters, model="tutor") == "tutor"
    assert served_name(**kwargs, adapters=adapters, model="the-deployment-id") == "tutor"
    assert served_name(weights="merged", deployment_name="m", adapters=[], model="x") == "m"
    row = Deployment(owner_id="u", name="tutor", weights="adapter", adapters=adapters)
    merged = Deployment(owner_id="u", name="other")
    assert pick([merged, row], "poet") is row
    assert pick([merged, row], "nothing") is None


def _adapter_archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class FakeS3:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.downloads = 0

    def download_file(self, bucket: str, key: str, path: str) -> None:
        self.downloads += 1
        Path(path).write_bytes(self.data)


def test_an_adapter_is_downloaded_once_and_its_rank_read(tmp_path: Path) -> None:
    s3 = FakeS3(
        _adapter_archive({"adapter_config.json": b'{"r": 8}', "adapter_model.safetensors": b"w"})
    )
    lines: list[str] = []
    folder = adapter_version_dir(tmp_path, Version("v1"), s3, lines.append)
    assert folder == tmp_path / "v1" / "adapter" and (folder / COMPLETE_MARKER).exists()
    assert rank_from_folder(folder) == 8
    assert adapter_version_dir(tmp_path, Version("v1"), s3, lines.append) == folder
    assert s3.downloads == 1 and lines
    with pytest.raises(InvalidInput, match="adapter_config"):
        adapter_version_dir(tmp_path, Version("v2"), FakeS3(_adapter_archive({"x": b""})), print)
    assert code_of(adapter_version_dir, tmp_path, Version("v3", adapter_prefix=""), s3, print) == (
        "model_version_has_no_adapter"
    )


def test_a_cloud_node_fetches_its_adapters_and_serves_them() -> None:
    node = ServingNode(
        deployment_id="d" * 32,
        served_name=BASE_SERVED_NAME,
        api_key="key",
        port=8000,
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        adapters=(
            NodeAdapter("tutor", "https://store.example/a1.tar.gz?X-Amz-Signature=a&b=1", 8),
            NodeAdapter("poet", "https://store.example/a2.tar.gz?X-Amz-Signature=c", 64),
        ),
    )
    script = startup_script(node)
    subprocess.run(["bash", "-n"], input=script.encode(), check=True)
    assert "'https://store.example/a1.tar.gz?X-Amz-Signature=a&b=1'" in script  # quoted
    assert "tar -xzf /opt/forgeline/adapters/1.tar.gz -C /opt/forgeline/adapters/1" in script
    serve = script[script.index('"$WORK/venv/bin/vllm" serve') :].replace("\\\n", " ")
    argv = shlex.split(serve.splitlines()[0])
    assert argv[argv.index("--served-model-name") + 1] == BASE_SERVED_NAME
    assert argv[argv.index("--max-loras") + 1] == "2"
    assert argv[argv.index("--max-lora-rank") + 1] == "64"
    modules = [json.loads(a) for a in argv[argv.index("--lora-modules") + 1 :]]
    assert modules == [
        {"name": "tutor", "path": "/opt/forgeline/adapters/0"},
        {"name": "poet", "path": "/opt/forgeline/adapters/1"},
    ]
    # Without adapters the script has no LoRA flag at all.
    plain = startup_script(
        ServingNode(deployment_id="d", served_name="m", api_key="k", port=1, hub_id="h")
    )
    assert "--enable-lora" not in plain and "adapters" not in plain


class PresigningS3(FakeS3):
    def generate_presigned_url(self, method: str, Params: dict[str, str], ExpiresIn: int) -> str:
        return f"https://store.example/{Params['Bucket']}/{Params['Key']}?sig=1"


def test_the_runner_derives_the_server_from_the_row(tmp_path: Path) -> None:
    """What a (re)start runs comes from the row alone: the base folder, the private base
    name and every adapter's flags; a cloud node gets each adapter's presigned URL."""
    base_dir = tmp_path / "models" / "tiny-base"
    base_dir.mkdir(parents=True)
    (base_dir / "config.json").write_text("{}")
    versions = [Version("v1", base_model="tiny-base"), Version("v2", base_model="tiny-base")]
    s3 = PresigningS3(
        _adapter_archive({"adapter_config.json": b'{"r": 16}', "adapter_model.safetensors": b""})
    )
    runner = DeploymentRunner(
        engine=None,  # type: ignore[arg-type]  # not touched by what is tested here
        settings=DeployerSettings(data_dir=tmp_path, trainer_models_dir=tmp_path / "models"),
        servers=None,  # type: ignore[arg-type]
        trainer=Catalogue(versions, Base(id="tiny-base")),  # type: ignore[arg-type]
        s3=s3,
        enqueue_start=lambda *_: None,
    )
    row = Deployment(
        owner_id="u", name="tutor", model_version_id="v1", weights="adapter",
        adapters=[{"model_version_id": "v1", "name": "tutor"},
                  {"model_version_id": "v2", "name": "poet"}],
    )  # fmt: skip
    for _ in range(2):  # a restart: the same server, the adapters already unpacked
        model_dir, name, flags = runner._local_model(row, lambda line: None)
        assert model_dir == base_dir and name == BASE_SERVED_NAME
        assert flags[flags.index("--max-loras") + 1] == "2"
        assert flags[flags.index("--max-lora-rank") + 1] == "16"
        modules = [json.loads(m) for m in flags[flags.index("--lora-modules") + 1 :]]
        assert [m["name"] for m in modules] == ["tutor", "poet"]
        assert all(Path(m["path"], "adapter_config.json").is_file() for m in modules)
    assert s3.downloads == 2
    nodes = runner._cloud_adapters(row)
    assert [(n.name, n.rank) for n in nodes] == [("tutor", 8), ("poet", 8)]
    assert nodes[0].url.startswith("https://store.example/forgeline/u/jobs/j/artefacts/adapter")
    merged = Deployment(owner_id="u", name="m", model_version_id="v1")
    assert runner._cloud_adapters(merged) == []
