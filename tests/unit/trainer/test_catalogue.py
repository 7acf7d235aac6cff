"""The trainer's catalogue: what a user sees before a run (memory, machine, time, price)."""

from __future__ import annotations

import re

import pytest

from services.common.errors import InvalidInput, NotFound
from services.trainer import catalogue
from services.trainer.catalogue import (
    CATALOGUE,
    INSTANCES,
    SUGGESTED_DATASETS,
    TIMES,
    Estimate,
    Method,
    estimate,
    get_base_model,
    memory_gb,
    needs_sharding,
    recommend_instance,
)
from services.trainer.datasets import FORMATS

LLAMA = CATALOGUE["llama-3-8b-instruct"]
SMOL = CATALOGUE["smollm2-135m-instruct"]
GEMMA = CATALOGUE["gemma-2b"]
METHODS: tuple[Method, ...] = ("full", "lora", "qlora")
G5_XLARGE = next(i for i in INSTANCES if i.instance_type == "g5.xlarge")
# The ChatTemplate values this catalogue may use, from axolotl 0.19.0's schema enums.
AXOLOTL_CHAT_TEMPLATES = {
    "chatml",
    "gemma",
    "llama3",
    "mistral_v2v3",
    "qwen_25",
    "tokenizer_default",
}


@pytest.mark.parametrize("micro_batch_size", [1, 2])
def test_memory_for_8b_models_is_in_the_well_known_ballparks(micro_batch_size: int) -> None:
    for model_id in ("llama-3-8b-instruct", "mistral-7b-instruct-v0.3", "qwen2.5-7b-instruct"):
        model = CATALOGUE[model_id]
        need = {
            method: memory_gb(model, method, sequence_len=2048, micro_batch_size=micro_batch_size)
            for method in METHODS
        }
        assert 115 <= need["full"] <= 140, (model_id, need)
        assert 16 <= need["lora"] <= 22, (model_id, need)
        assert 6 <= need["qlora"] <= 10, (model_id, need)


def test_qlora_needs_less_than_lora_which_needs_less_than_full() -> None:
    for model in CATALOGUE.values():
        need = [memory_gb(model, m, sequence_len=1024, micro_batch_size=2) for m in METHODS]
        assert need[2] < need[1] < need[0], model.id


def test_longer_sequences_and_bigger_batches_need_more_memory() -> None:
    base = memory_gb(LLAMA, "lora", sequence_len=2048, micro_batch_size=1)
    assert memory_gb(LLAMA, "lora", sequence_len=4096, micro_batch_size=1) > base
    assert memory_gb(LLAMA, "lora", sequence_len=2048, micro_batch_size=4) > base


def test_smollm2_fits_every_method_everywhere() -> None:
    for method in METHODS:
        assert memory_gb(SMOL, method, sequence_len=2048, micro_batch_size=2) < 8
        for provider in ("aws", "gcp"):
            result = estimate(
                SMOL,
                method,
                provider=provider,
                dataset_tokens=100_000,
                epochs=1,
                sequence_len=2048,
                micro_batch_size=2,
            )
            assert result.fits and result.instance is not None and result.instance.gpus == 1
        local = estimate(
            SMOL,
            method,
            provider="local",
            dataset_tokens=100_000,
            epochs=1,
            sequence_len=256,
            micro_batch_size=2,
            local_memory_gb=8,
        )
        assert local.fits and local.warning is None


def test_recommendation_is_the_cheapest_instance_per_hour_that_fits() -> None:
    shape = {"sequence_len": 2048, "micro_batch_size": 2}
    qlora_aws = recommend_instance(LLAMA, "qlora", "aws", **shape)
    qlora_gcp = recommend_instance(LLAMA, "qlora", "gcp", **shape)
    assert qlora_aws is not None and qlora_aws.instance_type == "g5.xlarge"
    assert qlora_gcp is not None and qlora_gcp.instance_type == "g2-standard-8"
    # Full fine-tuning of Gemma 2B needs ~42 GB: too much for the 24 GB A10G and the 40 GB
    # A100, so the next cheapest machine with room.
    full_aws = recommend_instance(GEMMA, "full", "aws", **shape)
    full_gcp = recommend_instance(GEMMA, "full", "gcp", **shape)
    assert full_aws is not None and full_aws.instance_type == "g6e.xlarge"
    assert full_gcp is not None and full_gcp.instance_type == "a2-ultragpu-1g"
    for provider in ("aws", "gcp"):
        chosen = recommend_instance(GEMMA, "full", provider, **shape)
        assert chosen is not None
        need = memory_gb(GEMMA, "full", **shape)
        for other in INSTANCES:
            if other.provider == provider and other.usd_per_hour < chosen.usd_per_hour:
                assert need > other.memory_per_gpu_gb * 0.9, other.instance_type


def test_a_long_run_goes_to_the_machine_that_makes_it_cheapest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shape = {"sequence_len": 2048, "micro_batch_size": 2}
    run = {"provider": "aws", "dataset_tokens": 20_000_000, "epochs": 1, **shape}
    best = estimate(LLAMA, "lora", **run)  # type: ignore[arg-type]
    assert best.instance is not None and best.instance.instance_type == "g6e.xlarge"
    # On the cheapest machine per hour, the same run would cost more.
    monkeypatch.setattr(catalogue, "INSTANCES", (G5_XLARGE,))
    slow = estimate(LLAMA, "lora", **run)  # type: ignore[arg-type]
    assert slow.instance == G5_XLARGE
    assert best.usd is not None and slow.usd is not None and best.usd < slow.usd
    assert best.hours < slow.hours


def test_nothing_fits_means_no_instance_and_a_plain_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Very long sequences and big batches outgrow even the 8-GPU machines.
    huge = {"sequence_len": 8192, "micro_batch_size": 8}
    assert recommend_instance(LLAMA, "full", "aws", **huge) is None
    assert recommend_instance(LLAMA, "full", "gcp", **huge) is None
    result = estimate(LLAMA, "full", provider="gcp", dataset_tokens=1_000_000, epochs=1, **huge)
    assert not result.fits and result.instance is None and result.usd is None
    assert result.warning is not None and "choose LoRA or QLoRA" in result.warning
    assert result.summary() == result.warning
    # With single-GPU machines only, full fine-tuning of an 8B model never fits.
    monkeypatch.setattr(catalogue, "INSTANCES", tuple(i for i in INSTANCES if i.gpus == 1))
    assert recommend_instance(LLAMA, "full", "aws", sequence_len=2048, micro_batch_size=1) is None
    assert recommend_instance(LLAMA, "lora", "aws", sequence_len=2048, micro_batch_size=1)


def test_full_fine_tuning_of_8b_shards_across_eight_gpus() -> None:
    result = estimate(
        LLAMA,
        "full",
        provider="aws",
        dataset_tokens=5_000_000,
        epochs=1,
        sequence_len=2048,
        micro_batch_size=2,
    )
    assert result.instance is not None and result.instance.instance_type == "p4d.24xlarge"
    assert needs_sharding(result.instance, "full")
    assert not needs_sharding(result.instance, "lora")
    assert any("ZeRO-3" in line for line in result.assumptions)


def test_hours_scale_linearly_with_tokens_and_epochs() -> None:
    def run(dataset_tokens: int, epochs: float) -> Estimate:
        return estimate(
            LLAMA,
            "qlora",
            provider="gcp",
            dataset_tokens=dataset_tokens,
            epochs=epochs,
            sequence_len=2048,
            micro_batch_size=2,
        )

    one, two_tokens, two_epochs = run(1_000_000, 1), run(2_000_000, 1), run(1_000_000, 2)
    assert two_tokens.tokens == two_epochs.tokens == 2 * one.tokens
    assert two_tokens.training_hours == pytest.approx(2 * one.training_hours)
    assert two_epochs.hours == pytest.approx(two_tokens.hours)
    # The fixed part (machine start, download, evaluation) does not grow with the data.
    assert two_tokens.hours - two_tokens.training_hours == pytest.approx(
        one.hours - one.training_hours
    )
    assert one.usd is not None and two_tokens.usd is not None and two_tokens.usd > one.usd


def test_local_smollm2_on_a_small_dataset_takes_minutes_and_costs_nothing() -> None:
    result = estimate(
        SMOL,
        "lora",
        provider="local",
        dataset_tokens=50_000,
        epochs=1,
        sequence_len=256,
        micro_batch_size=2,
    )
    assert result.instance is None and result.usd is None and result.warning is None
    assert result.training_hours == pytest.approx(50_000 / 256 / 3600)  # the measured speed
    assert result.hours < 0.5
    assert re.fullmatch(r"About \d+ min on this machine\.", result.summary())


def test_a_measured_local_speed_replaces_the_scaled_one() -> None:
    kwargs = {"dataset_tokens": 100_000, "epochs": 1, "sequence_len": 256, "micro_batch_size": 2}
    scaled = estimate(GEMMA, "lora", provider="local", **kwargs)
    measured = estimate(
        GEMMA,
        "lora",
        provider="local",
        local_tokens_per_second=100,
        **kwargs,
    )
    assert measured.training_hours == pytest.approx(100_000 / 100 / 3600)
    assert any("scaled" in line for line in scaled.assumptions)
    assert any("measured" in line for line in measured.assumptions)


def test_local_training_of_an_8b_model_says_days_and_suggests_a_cloud_gpu() -> None:
    result = estimate(
        LLAMA,
        "lora",
        provider="local",
        dataset_tokens=2_000_000,
        epochs=1,
        sequence_len=2048,
        micro_batch_size=1,
    )
    assert result.usd is None
    assert result.hours > 24
    assert result.warning is not None
    assert re.fullmatch(
        r"This would take about \d+ days on this machine's CPU; choose a cloud GPU\.",
        result.warning,
    )


def test_local_memory_is_checked_when_known() -> None:
    result = estimate(
        LLAMA,
        "full",
        provider="local",
        dataset_tokens=1_000,
        epochs=1,
        sequence_len=512,
        micro_batch_size=1,
        local_memory_gb=16,
    )
    assert not result.fits
    assert result.warning is not None and "16 GB" in result.warning


def test_summary_sentence() -> None:
    def summary(hours: float, usd: float | None, instance: object = G5_XLARGE) -> str:
        return Estimate(instance, 10.0, True, 1, hours, usd, [], None, hours).summary()  # type: ignore[arg-type]

    assert summary(1 + 20 / 60, 1.35) == (
        f"About 1 h 20 min on 1{TIMES} NVIDIA A10G (g5.xlarge), about $1.35."
    )
    assert summary(0.2, 0.2) == f"About 12 min on 1{TIMES} NVIDIA A10G (g5.xlarge), about $0.20."
    assert summary(2.01, 2.02).startswith("About 2 h on ")
    assert summary(14.2, 135.4).endswith("about $135.")
    assert summary(50, 1234.5).startswith("About 2 days ") and summary(50, 1234.5).endswith(
        "about $1,234."
    )
    assert summary(0.2, None, None) == "About 12 min on this machine."
    real = estimate(
        GEMMA,
        "qlora",
        provider="aws",
        dataset_tokens=500_000,
        epochs=1,
        sequence_len=1024,
        micro_batch_size=2,
    )
    assert re.fullmatch(
        rf"About (\d+ min|\d+ h( \d+ min)?) on 1{TIMES} NVIDIA \w+ \([\w.-]+\), "
        r"about \$\d+\.\d\d\.",
        real.summary(),
    )


def test_unknown_model_is_not_found_and_lists_the_choices() -> None:
    assert get_base_model("llama-3-8b-instruct") is LLAMA
    with pytest.raises(NotFound) as raised:
        get_base_model("gpt-5")
    assert raised.value.code == "unknown_base_model"
    assert all(model_id in raised.value.message for model_id in CATALOGUE)


def test_bad_shapes_and_providers_are_invalid_input() -> None:
    with pytest.raises(InvalidInput) as raised:
        memory_gb(LLAMA, "lora", sequence_len=16_384, micro_batch_size=1)  # context is 8,192
    assert raised.value.code == "invalid_sequence_len"
    with pytest.raises(InvalidInput):
        estimate(
            SMOL,
            "lora",
            provider="azure",  # type: ignore[arg-type]
            dataset_tokens=1,
            epochs=1,
            sequence_len=256,
            micro_batch_size=1,
        )


def test_catalogue_entries() -> None:
    assert set(CATALOGUE) == {
        "smollm2-135m-instruct",
        "gemma-2b",
        "mistral-7b-instruct-v0.3",
        "llama-3-8b-instruct",
        "qwen2.5-7b-instruct",
    }
    assert [m.id for m in CATALOGUE.values() if m.bundled] == ["smollm2-135m-instruct"]
    assert SMOL.parameters == 134_515_008 and not SMOL.gated
    assert LLAMA.gated and GEMMA.gated
    for model in CATALOGUE.values():
        assert model.axolotl_chat_template in AXOLOTL_CHAT_TEMPLATES, model.id
        assert model.good_for.endswith(".") and model.license
        assert model.layers > 0 and model.hidden_size > 0


def test_every_suggested_dataset_has_a_valid_format() -> None:
    assert len({d.hub_id for d in SUGGESTED_DATASETS}) == len(SUGGESTED_DATASETS) == 6
    for dataset in SUGGESTED_DATASETS:
        assert dataset.format in FORMATS, dataset.hub_id
        assert "/" in dataset.hub_id and dataset.rows > 0 and dataset.needs_hub
        assert dataset.axolotl_type and dataset.licence and dataset.good_for.endswith(".")
    by_id = {d.hub_id: d for d in SUGGESTED_DATASETS}
    assert by_id["Intel/orca_dpo_pairs"].format == "preference"
    assert by_id["HuggingFaceH4/ultrachat_200k"].split == "train_sft"
    assert by_id["openai/gsm8k"].subset == "main"
