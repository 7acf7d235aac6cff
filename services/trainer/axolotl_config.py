"""The Axolotl YAML config of a training job: the single source of truth for the run.

It is written once when the job is created, stored with the job (the user can read it in the
"advanced" panel), and run as is wherever the job trains: locally from the axolotl engine, or
on a cloud node. Paths in it are relative to the job's working folder, whose layout is the
same everywhere:

    config.yml
    data/train.jsonl, data/eval.jsonl   rows already converted to what the stage expects
    output/                             adapter, checkpoints (auto-resumed), merged model
    wandb/                              offline runs

Secrets never go in here (a wandb key travels as WANDB_API_KEY in the environment).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import yaml

from services.common.errors import InvalidInput
from services.trainer.catalogue import SuggestedDataset

Stage = Literal["pretrain", "sft", "dpo", "orpo"]
Method = Literal["full", "lora", "qlora"]
Device = Literal["cpu", "gpu"]
STAGES: tuple[Stage, ...] = ("pretrain", "sft", "dpo", "orpo")

TRAIN_FILE = "data/train.jsonl"
EVAL_FILE = "data/eval.jsonl"
OUTPUT_DIR = "./output"
DEEPSPEED_FILE = "deepspeed_zero3.json"
# The Axolotl plugin that reports progress (services/trainer/engine/forgeline_events.py).
EVENTS_PLUGIN = "forgeline_events.ForgelineEventsPlugin"
# Of a hub dataset, the share axolotl holds out for the eval loss (its val_set_size).
HUB_EVAL_FRACTION = 0.01

STAGE_HELP: dict[Stage, str] = {
    "pretrain": "Teach the model your documents' language and facts (continued pre-training).",
    "sft": "Teach the model to answer the way your examples do (instruction tuning).",
    "dpo": "Teach the model which of two answers people prefer (DPO, the RLHF step).",
    "orpo": "Instruction tuning and preferences in one pass (ORPO).",
}
# Which dataset formats each stage trains on.
STAGE_FORMATS: dict[Stage, tuple[str, ...]] = {
    "pretrain": ("text",),
    "sft": ("alpaca", "chat", "sharegpt"),
    "dpo": ("preference",),
    "orpo": ("preference",),
}


@dataclass(frozen=True)
class Hyperparameters:
    epochs: float = 1.0
    max_steps: int | None = None  # stops early when set (a quick trial)
    learning_rate: float = 2e-4
    sequence_len: int = 2048
    micro_batch_size: int = 1
    gradient_accumulation_steps: int = 4
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    warmup_ratio: float = 0.03
    eval_steps: int | None = None  # None: about ten evaluations per run
    save_steps: int | None = None  # None: as often as evaluations
    seed: int = 42

    def checked(self) -> Hyperparameters:
        problems = []
        if not 0 < self.epochs <= 100:
            problems.append("epochs must be between 0 and 100")
        if self.max_steps is not None and not 1 <= self.max_steps <= 1_000_000:
            problems.append("max_steps must be between 1 and 1,000,000")
        if not 0 < self.learning_rate <= 0.1:
            problems.append("the learning rate must be between 0 and 0.1")
        if not 32 <= self.sequence_len <= 131072:
            problems.append("the sequence length must be between 32 and 131,072 tokens")
        if not 1 <= self.micro_batch_size <= 256:
            problems.append("the micro batch size must be between 1 and 256")
        if not 1 <= self.gradient_accumulation_steps <= 1024:
            problems.append("gradient accumulation must be between 1 and 1,024 steps")
        if not 1 <= self.lora_r <= 1024 or not 1 <= self.lora_alpha <= 4096:
            problems.append("LoRA rank must be 1 to 1,024 and alpha 1 to 4,096")
        if not 0 <= self.lora_dropout < 1 or not 0 <= self.warmup_ratio < 1:
            problems.append("dropout and warm-up ratio must be between 0 and 1")
        if problems:
            raise InvalidInput("invalid_hyperparameters", "; ".join(problems).capitalize() + ".")
        return self


# Plain-language presets; the advanced panel starts from one and changes single values.
PRESETS: dict[str, tuple[str, Hyperparameters]] = {
    "quick": (
        "A short trial run to see that everything works: a few dozen steps.",
        Hyperparameters(max_steps=30, learning_rate=2e-4, lora_r=8, lora_alpha=16),
    ),
    "balanced": (
        "One pass over your data: a good first model for most datasets.",
        Hyperparameters(epochs=1, learning_rate=2e-4),
    ),
    "thorough": (
        "Three passes with a gentler learning rate: better results on small datasets, "
        "three times the cost.",
        Hyperparameters(epochs=3, learning_rate=1e-4, lora_r=32, lora_alpha=64),
    ),
}


def preset(name: str, **overrides: Any) -> Hyperparameters:
    if name not in PRESETS:
        raise InvalidInput("unknown_preset", f"Choose one of these presets: {', '.join(PRESETS)}.")
    known = set(Hyperparameters.__dataclass_fields__)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InvalidInput(
            "invalid_hyperparameters",
            f"Unknown setting(s): {', '.join(unknown)}. Known: {', '.join(sorted(known))}.",
        )
    return replace(PRESETS[name][1], **overrides).checked()


@dataclass(frozen=True)
class JobSpec:
    base_model: str  # a folder on the training machine, or a hub id
    chat_template: str  # Axolotl's name for the model's template
    stage: Stage
    method: Method
    device: Device
    hyperparameters: Hyperparameters
    train_rows: int
    eval_rows: int
    wandb_project: str = "forgeline"
    wandb_run: str = ""
    wandb_online: bool = False
    sharded: bool = False  # full fine-tuning split over several GPUs (DeepSpeed ZeRO-3)
    # A suggested public dataset the node loads from the hub instead of the job's files.
    hub_dataset: SuggestedDataset | None = None


def _steps_per_epoch(spec: JobSpec) -> int:
    hp = spec.hyperparameters
    per_step = hp.micro_batch_size * hp.gradient_accumulation_steps
    return max(1, -(-spec.train_rows // per_step))


def total_steps(spec: JobSpec) -> int:
    hp = spec.hyperparameters
    planned = max(1, int(_steps_per_epoch(spec) * hp.epochs))
    return min(planned, hp.max_steps) if hp.max_steps else planned


def build_config(spec: JobSpec) -> dict[str, Any]:
    """The config as a mapping (see `to_yaml`)."""
    hp = spec.hyperparameters
    if spec.method == "qlora" and spec.device == "cpu":
        raise InvalidInput(
            "qlora_needs_gpu",
            "QLoRA loads the model in 4 bits, which needs a GPU; choose LoRA to train here.",
        )
    steps = total_steps(spec)
    every = hp.eval_steps or max(1, steps // 10)
    config: dict[str, Any] = {
        "base_model": spec.base_model,
        "tokenizer_type": "AutoTokenizer",
        "sequence_len": hp.sequence_len,
        "sample_packing": False,
        "pad_to_sequence_len": False,
        # Rows longer than sequence_len are cut short, as the dataset page tells the user,
        # not dropped (axolotl's default): a dropped held-out row can leave no eval set, and
        # the held-out loss silently missing.
        "excess_length_strategy": "truncate",
        "output_dir": OUTPUT_DIR,
        "dataset_prepared_path": "./prepared",
        "num_epochs": hp.epochs,
        "micro_batch_size": hp.micro_batch_size,
        "gradient_accumulation_steps": hp.gradient_accumulation_steps,
        "learning_rate": hp.learning_rate,
        "lr_scheduler": "cosine",
        "warmup_ratio": hp.warmup_ratio,
        "optimizer": "adamw_torch",
        "weight_decay": 0.0,
        "seed": hp.seed,
        "logging_steps": 1,
        "save_steps": hp.save_steps or every,
        "save_total_limit": 2,
        # A job restarted after a crash continues from the last checkpoint in output/.
        "auto_resume_from_checkpoints": True,
        "plugins": [EVENTS_PLUGIN],
        "wandb_project": spec.wandb_project,
        "wandb_name": spec.wandb_run or None,
        "wandb_mode": "online" if spec.wandb_online else "offline",
    }
    if hp.max_steps:
        config["max_steps"] = hp.max_steps
    config |= _datasets(spec)
    # Axolotl refuses eval_steps without an eval set (DPO/ORPO hold none out here).
    if config.get("test_datasets") or config.get("val_set_size"):
        config["eval_steps"] = every
    config |= _method(spec)
    config |= device_settings(spec.device)
    return {key: value for key, value in config.items() if value is not None}


def _datasets(spec: JobSpec) -> dict[str, Any]:
    if spec.hub_dataset is not None:
        return _hub_dataset(spec, spec.hub_dataset)
    eval_part: dict[str, Any] = {"test_datasets": None, "val_set_size": 0.0}
    if spec.stage == "pretrain":
        entry: dict[str, Any] = {"path": TRAIN_FILE, "ds_type": "json", "type": "completion"}
        entries = {"datasets": [entry]}
        if spec.eval_rows:
            eval_part["test_datasets"] = [{**entry, "path": EVAL_FILE, "split": "train"}]
        return entries | eval_part
    if spec.stage == "sft":
        entry = {
            "path": TRAIN_FILE,
            "ds_type": "json",
            "type": "chat_template",
            "field_messages": "messages",
            "roles_to_train": ["assistant"],
        }
        result: dict[str, Any] = {"chat_template": spec.chat_template, "datasets": [entry]}
        if spec.eval_rows:
            eval_part["test_datasets"] = [{**entry, "path": EVAL_FILE, "split": "train"}]
        return result | eval_part
    # Preference stages: rows are prompt messages with a chosen and a rejected answer.
    strategy = "chat_template.default" if spec.stage == "dpo" else "chat_template.argilla"
    entry = {"path": TRAIN_FILE, "ds_type": "json", "type": strategy, "split": "train"}
    return {
        "rl": spec.stage,
        "chat_template": spec.chat_template,
        "datasets": [entry],
        # Axolotl's preference trainers evaluate on a split of the training file.
        "val_set_size": 0.0,
    }


def _hub_dataset(spec: JobSpec, hub: SuggestedDataset) -> dict[str, Any]:
    """Axolotl loads it with `datasets` on the node, which can reach the hub; it holds out
    a share of the rows itself for the eval loss."""
    entry: dict[str, Any] = {"path": hub.hub_id, "type": hub.axolotl_type, "split": hub.split}
    if hub.subset:
        entry["name"] = hub.subset
    if hub.axolotl_type == "chat_template":
        entry |= {"field_messages": "messages", "roles_to_train": ["assistant"]}
    result: dict[str, Any] = {"datasets": [entry], "test_datasets": None}
    if spec.stage in ("dpo", "orpo"):
        return result | {"rl": spec.stage, "chat_template": spec.chat_template, "val_set_size": 0.0}
    return result | {"chat_template": spec.chat_template, "val_set_size": HUB_EVAL_FRACTION}


def _method(spec: JobSpec) -> dict[str, Any]:
    hp = spec.hyperparameters
    if spec.method == "full":
        return {"deepspeed": DEEPSPEED_FILE if spec.sharded else None}
    lora = {
        "adapter": "lora" if spec.method == "lora" else "qlora",
        "lora_r": hp.lora_r,
        "lora_alpha": hp.lora_alpha,
        "lora_dropout": hp.lora_dropout,
        "lora_target_linear": True,
    }
    if spec.method == "qlora":
        lora["load_in_4bit"] = True
    return lora


def device_settings(device: Device) -> dict[str, Any]:
    """What differs between a CPU run (this machine) and a GPU run (a cloud node)."""
    if device == "cpu":
        return {
            # Axolotl's fused LoRA kernels are written for CUDA only.
            "lora_mlp_kernel": False,
            "lora_qkv_kernel": False,
            "lora_o_kernel": False,
            "bf16": False,
            "fp16": False,
            "tf32": False,
            "gradient_checkpointing": False,  # saves memory at the price of speed
            "flash_attention": False,
        }
    return {
        "bf16": "auto",
        "tf32": True,
        "flash_attention": True,
        "gradient_checkpointing": True,
    }


def deepspeed_zero3() -> dict[str, Any]:
    """ZeRO-3 with bf16, written beside the config when `sharded` (Axolotl's own
    `deepspeed_configs/zero3_bf16.json` is not in its wheel)."""
    return {
        "zero_optimization": {
            "stage": 3,
            "overlap_comm": True,
            "contiguous_gradients": True,
            "stage3_gather_16bit_weights_on_model_save": True,
        },
        "bf16": {"enabled": "auto"},
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "wall_clock_breakdown": False,
    }


def to_yaml(config: dict[str, Any]) -> str:
    header = (
        "# Axolotl config written by Forgeline: the single source of truth for this job.\n"
        "# Paths are relative to the job's working folder.\n"
    )
    return header + str(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def hyperparameters_dict(hp: Hyperparameters) -> dict[str, Any]:
    return asdict(hp)
