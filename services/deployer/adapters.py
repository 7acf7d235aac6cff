"""Serving fine-tuned versions as base model + LoRA adapters (vLLM `--enable-lora`).

A deployment chooses its `weights`: `merged` (the default: the version's merged model, one
model per server) or `adapter` (the version's base model, with the version's LoRA adapter
on top). An adapter deployment may list further adapter versions of the same base
(`extra_adapters`): one vLLM server then serves them all, each answering to its own
`model` name, and the base itself under a private name no caller can reach.

Why a deployment lists its adapters, rather than several deployments sharing one server by
loading adapters at run time (`VLLM_ALLOW_RUNTIME_LORA_UPDATING`, `/v1/load_lora_adapter`):

- The adapter set is then part of the deployment's row, fixed when it is created, and the
  server's command line is derived from the row on every (re)start. A server restarted
  after a crash (by the health monitor, on another attempt) therefore serves exactly the
  same adapters with no replay of load calls, and a stop stops exactly one server. Sharing
  would need a second state machine (a server with attempts, processes and restarts of its
  own, beside the deployments riding on it) and ordered load calls from whichever process
  noticed a restart; every race between a start, a stop and a restart would double.
- vLLM itself marks runtime updating as "ONLY for local development": the load and unload
  routes have no authentication of their own, and in vLLM 0.32 unloading only forgets the
  name (the engine keeps the weights until it evicts them).
- The same flags serve a cloud node, which has no runtime channel from the platform at
  all: its startup script knows every adapter when the machine boots.

So the unit that starts, restarts and stops is still the deployment; the adapters are
named models inside it. `--max-loras` is the number of adapters (all of them may be in
one batch), `--max-lora-rank` the largest adapter rank rounded up to a rank vLLM accepts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from services.common.errors import InvalidInput
from services.deployer.states import CLOUD_TARGETS, choose_name

MERGED = "merged"
ADAPTER = "adapter"
WEIGHTS = (MERGED, ADAPTER)
# The base model's name inside an adapter server. A deployment or adapter name can never
# hold a '/', so no caller's name collides with it (vLLM refuses an adapter named like the
# base), and ResolveModel never hands it out: the base alone is not a deployment.
BASE_SERVED_NAME = "forgeline/base"
# The ranks vLLM 0.32 accepts for --max-lora-rank (vllm.config.lora.MaxLoRARanks).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# Adapters one server may carry: each holds a slot of max-lora-rank weights in memory.
MAX_ADAPTERS = 8


class VersionLike(Protocol):
    """What is read of a trainer `ModelVersion` message."""

    id: str
    name: str
    base_model: str
    adapter_prefix: str
    config_yaml: str


class BaseLike(Protocol):
    """What is read of a trainer `BaseModel` message."""

    id: str
    display_name: str
    gated: bool
    available_locally: bool


class Catalogue(Protocol):
    def model_version(self, owner_id: str, version_id: str) -> Any: ...

    def base_model(self, model_id: str) -> Any: ...


@dataclass(frozen=True)
class ServedAdapter:
    """One adapter of a server: the name callers use and where its files are."""

    name: str
    path: str  # a folder on the serving machine
    rank: int


def check_weights(weights: str) -> str:
    weights = weights or MERGED
    if weights not in WEIGHTS:
        raise InvalidInput(
            "invalid_weights",
            f"There is no weights choice {weights!r}. Choose merged (the fine-tuned model "
            "merged into its base) or adapter (the base model with the LoRA adapter on top).",
        )
    return weights


def check_adapter_request(*, weights: str, base_model: str, extra_adapters: int) -> None:
    """What can be refused before any model version is looked up."""
    if weights != ADAPTER:
        if extra_adapters:
            raise InvalidInput(
                "extra_adapters_need_adapter_weights",
                'Several models on one server are LoRA adapters on one base; set "weights": '
                '"adapter" to deploy extra_adapters.',
            )
        return
    if base_model:
        raise InvalidInput(
            "adapter_needs_model_version",
            'A base model has no adapter to serve; deploy it with "weights": "merged" (the '
            'default), or name a fine-tuned model_version_id with "weights": "adapter".',
        )
    if 1 + extra_adapters > MAX_ADAPTERS:
        raise InvalidInput(
            "too_many_adapters",
            f"One deployment serves at most {MAX_ADAPTERS} adapters; this one lists "
            f"{1 + extra_adapters}.",
        )


def check_adapter_versions(versions: Sequence[VersionLike]) -> None:
    """The versions of one adapter server: each has an adapter, all share the first one's
    base model, and none is listed twice."""
    seen: set[str] = set()
    first = versions[0]
    for version in versions:
        label = version.name or version.id
        if not version.adapter_prefix:
            raise InvalidInput(
                "model_version_has_no_adapter",
                f"The model version {label!r} was fully fine-tuned and has no LoRA adapter; "
                'deploy it with "weights": "merged".',
            )
        if version.base_model != first.base_model:
            raise InvalidInput(
                "adapter_base_mismatch",
                f"All adapters of one deployment share one base model: {label!r} was trained "
                f"on {version.base_model!r}, the first on {first.base_model!r}.",
            )
        if version.id in seen:
            raise InvalidInput("duplicate_adapter", f"The model version {label!r} is listed twice.")
        seen.add(version.id)


def check_adapter_base(base: BaseLike, target: str) -> None:
    """An adapter server loads the base model itself: its weights must be on this machine
    (local), or downloadable from the Hub without a token (cloud)."""
    name = base.display_name or base.id
    if target == "local" and not base.available_locally:
        raise InvalidInput(
            "model_not_available_locally",
            f"The adapter's base model {name} is not on this machine; deploy the merged "
            "weights, or deploy to a cloud target.",
        )
    if target in CLOUD_TARGETS and base.gated:
        raise InvalidInput(
            "model_gated",
            f"The adapter's base model {name} needs a Hugging Face token to download, which "
            'cloud deployments cannot pass yet; deploy with "weights": "merged".',
        )


def adapter_versions(
    trainer: Catalogue, owner_id: str, first: VersionLike, target: str, extra_ids: Sequence[str]
) -> list[Any]:
    """The owner's versions an adapter deployment serves, checked (another user's version
    is a 404 `model_version_not_found`, as a missing one)."""
    versions = [first, *(trainer.model_version(owner_id, v) for v in extra_ids)]
    check_adapter_versions(versions)
    check_adapter_base(trainer.base_model(first.base_model), target)
    return versions


def name_adapters(
    deployment_name: str, versions: Sequence[VersionLike], wanted: Sequence[str],
    taken: set[str],
) -> list[dict[str, str]]:  # fmt: skip
    """The row's adapters: the first answers to the deployment's name; each further one to
    the name asked for, or its version's name made unique (all names unique among the
    owner's live deployments and their adapters)."""
    used = set(taken) | {deployment_name}
    named = [{"model_version_id": versions[0].id, "name": deployment_name}]
    for version, name in zip(versions[1:], wanted, strict=True):
        chosen = choose_name(name.strip(), version.name or version.id, used)
        used.add(chosen)
        named.append({"model_version_id": version.id, "name": chosen})
    return named


def rank_from_config(config_yaml: str) -> int:
    """The LoRA rank the trainer's Axolotl config asked for (0 when it names none)."""
    try:
        config = yaml.safe_load(config_yaml or "") or {}
    except yaml.YAMLError:
        return 0
    rank = config.get("lora_r") if isinstance(config, dict) else None
    return int(rank) if isinstance(rank, int) and rank > 0 else 0


def rank_from_folder(folder: Path) -> int:
    """The rank an unpacked PEFT adapter really has (`r` in adapter_config.json)."""
    try:
        config: dict[str, Any] = json.loads((folder / "adapter_config.json").read_text())
    except (OSError, ValueError):
        return 0
    rank = config.get("r")
    return int(rank) if isinstance(rank, int) and rank > 0 else 0


def max_lora_rank(ranks: Sequence[int]) -> int:
    """The smallest rank vLLM accepts that holds every adapter (16, its default, when no
    rank is known)."""
    largest = max((r for r in ranks if r > 0), default=16)
    for allowed in VLLM_LORA_RANKS:
        if allowed >= largest:
            return allowed
    raise InvalidInput(
        "adapter_rank_too_large",
        f"vLLM serves LoRA adapters up to rank {VLLM_LORA_RANKS[-1]}; this one has rank "
        f"{largest}. Deploy the merged weights instead.",
    )


def lora_args(adapters: Sequence[ServedAdapter]) -> list[str]:
    """vLLM's flags for a server of these adapters. Modules go in the JSON form, which no
    '=' or ',' in a path can confuse."""
    modules = [json.dumps({"name": a.name, "path": a.path}) for a in adapters]
    return [
        "--enable-lora",
        "--max-loras", str(max(1, len(adapters))),
        "--max-lora-rank", str(max_lora_rank([a.rank for a in adapters])),
        "--lora-modules", *modules,
    ]  # fmt: skip


def adapter_names(row_adapters: Sequence[dict[str, Any]]) -> list[str]:
    return [str(a["name"]) for a in row_adapters]


def served_name(*, weights: str, deployment_name: str, adapters: Sequence[dict[str, Any]],
                model: str) -> str:  # fmt: skip
    """The name the server knows `model` by: a merged deployment answers to its own name;
    in an adapter server, the adapter named `model` (the deployment's name and id mean its
    first adapter)."""
    if weights != ADAPTER or not adapters:
        return deployment_name
    names = adapter_names(adapters)
    return model if model in names else names[0]
