"""The Axolotl config a job runs with, and the training files it reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from services.common.errors import InvalidInput
from services.trainer import axolotl_config as ac
from services.trainer import catalogue, datasets
from services.trainer.job_data import prepare, training_record


def spec(**changes: object) -> ac.JobSpec:
    base = {
        "base_model": "/models/smollm2",
        "chat_template": "chatml",
        "stage": "sft",
        "method": "lora",
        "device": "cpu",
        "hyperparameters": ac.preset("balanced"),
        "train_rows": 100,
        "eval_rows": 5,
    }
    return ac.JobSpec(**{**base, **changes})  # type: ignore[arg-type]


def test_a_cpu_lora_sft_config_is_what_axolotl_needs_on_cpu() -> None:
    config = yaml.safe_load(ac.to_yaml(ac.build_config(spec())))
    assert config["adapter"] == "lora" and config["lora_target_linear"] is True
    assert config["bf16"] is False and config["fp16"] is False
    assert not any(config[k] for k in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel"))
    assert config["datasets"][0] == {
        "path": "data/train.jsonl",
        "ds_type": "json",
        "type": "chat_template",
        "field_messages": "messages",
        "roles_to_train": ["assistant"],
    }
    assert config["test_datasets"][0]["path"] == "data/eval.jsonl"
    assert config["chat_template"] == "chatml"
    assert config["auto_resume_from_checkpoints"] is True
    assert config["plugins"] == [ac.EVENTS_PLUGIN]
    assert config["wandb_mode"] == "offline"
    assert "api_key" not in json.dumps(config)  # secrets never go in the config
    # Long rows are cut short, as the dataset page says, so a held-out row is never lost.
    assert config["excess_length_strategy"] == "truncate"


def test_gpu_qlora_full_sharded_and_preference_stages() -> None:
    with pytest.raises(InvalidInput) as refused:
        ac.build_config(spec(method="qlora"))
    assert refused.value.code == "qlora_needs_gpu"
    qlora = ac.build_config(spec(method="qlora", device="gpu"))
    assert qlora["load_in_4bit"] is True and qlora["bf16"] == "auto"
    full = ac.build_config(spec(method="full", device="gpu", sharded=True))
    assert full["deepspeed"] == ac.DEEPSPEED_FILE and "adapter" not in full
    assert ac.deepspeed_zero3()["zero_optimization"]["stage"] == 3
    dpo = ac.build_config(spec(stage="dpo"))
    assert dpo["rl"] == "dpo" and dpo["datasets"][0]["type"] == "chat_template.default"
    orpo = ac.build_config(spec(stage="orpo"))
    assert orpo["rl"] == "orpo" and orpo["datasets"][0]["type"] == "chat_template.argilla"
    pretrain = ac.build_config(spec(stage="pretrain"))
    assert pretrain["datasets"][0]["type"] == "completion" and "chat_template" not in pretrain


def test_steps_presets_and_bad_settings() -> None:
    hp = ac.preset("balanced", micro_batch_size=2, gradient_accumulation_steps=5, epochs=2)
    assert ac.total_steps(spec(hyperparameters=hp, train_rows=95)) == 20  # ceil(95/10) * 2
    quick = ac.preset("quick")
    assert ac.total_steps(spec(hyperparameters=quick, train_rows=10_000)) == quick.max_steps
    for bad, code in [
        ({"learning_rate": 3.0}, "invalid_hyperparameters"),
        ({"colour": "blue"}, "invalid_hyperparameters"),
        ({"sequence_len": 8}, "invalid_hyperparameters"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            ac.preset("balanced", **bad)
        assert caught.value.code == code
    with pytest.raises(InvalidInput) as unknown:
        ac.preset("heroic")
    assert unknown.value.code == "unknown_preset"


def test_training_records_per_stage() -> None:
    alpaca = {"question": "2+2?", "answer": "#### 4"}
    assert training_record(alpaca, "alpaca", "sft") == {
        "messages": [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "#### 4"},
        ]
    }
    pair = {"prompt": "Sky?", "chosen": "Blue.", "rejected": "Green."}
    dpo = training_record(pair, "preference", "dpo")
    assert dpo == {
        "messages": [{"role": "user", "content": "Sky?"}],
        "chosen": "Blue.",
        "rejected": "Green.",
    }
    orpo = training_record(pair, "preference", "orpo")
    assert orpo["prompt"] == "Sky?" and orpo["chosen"][-1]["content"] == "Blue."
    assert training_record({"text": "Lava."}, "text", "pretrain") == {"text": "Lava."}


def test_prepare_splits_exactly_as_the_dataset_page_shows(tmp_path: Path) -> None:
    source = tmp_path / "qa.jsonl"
    rows = [{"instruction": f"Say {i}", "output": str(i)} for i in range(40)]
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    prepared = prepare(
        source,
        "jsonl",
        "alpaca",
        "sft",
        eval_fraction=0.1,
        seed="dataset-1",
        valid_rows=40,
        out_dir=tmp_path / "data",
    )
    assert (prepared.train_rows, prepared.eval_rows) == datasets.split_counts(40, 0.1)
    held = [json.loads(line) for line in prepared.eval.read_text().splitlines()]
    expected = [f"Say {n}" for n in range(40) if datasets.is_eval_row(n, 0.1, "dataset-1", rows=40)]
    assert [r["messages"][0]["content"] for r in held] == expected
    with pytest.raises(InvalidInput) as wrong:
        prepare(
            source, "jsonl", "alpaca", "dpo", eval_fraction=0.1, seed="s", valid_rows=40,
            out_dir=tmp_path / "x",
        )  # fmt: skip
    assert wrong.value.code == "dataset_does_not_fit_stage"


def test_a_suggested_hub_dataset_is_loaded_by_axolotl_on_the_node() -> None:
    gsm8k = catalogue.get_suggested_dataset("openai/gsm8k")
    config = ac.build_config(spec(device="gpu", hub_dataset=gsm8k))
    assert config["datasets"] == [
        {"path": "openai/gsm8k", "type": "alpaca_chat.load_qa", "split": "train", "name": "main"}
    ]
    assert config["val_set_size"] == ac.HUB_EVAL_FRACTION and "test_datasets" not in config
    ultrachat = catalogue.get_suggested_dataset("HuggingFaceH4/ultrachat_200k")
    entry = ac.build_config(spec(device="gpu", hub_dataset=ultrachat))["datasets"][0]
    assert entry["split"] == "train_sft" and entry["field_messages"] == "messages"
    pairs = catalogue.get_suggested_dataset("Intel/orca_dpo_pairs")
    config = ac.build_config(spec(device="gpu", stage="dpo", hub_dataset=pairs))
    assert config["rl"] == "dpo" and config["datasets"][0]["type"] == "chatml.intel"
    with pytest.raises(InvalidInput) as refused:
        catalogue.get_suggested_dataset("someone/private-data")
    assert refused.value.code == "unknown_hub_dataset"


def test_eval_steps_only_where_there_is_an_eval_set() -> None:
    # Axolotl 0.19 refuses eval_steps with val_set_size 0 and no test_datasets.
    assert "eval_steps" in ac.build_config(spec(stage="sft"))
    assert "eval_steps" not in ac.build_config(spec(stage="sft", eval_rows=0))
    for stage in ("dpo", "orpo"):
        assert "eval_steps" not in ac.build_config(spec(stage=stage))
