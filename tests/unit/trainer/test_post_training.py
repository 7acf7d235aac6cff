"""What the training process does after training (services/trainer/engine/post_training.py):
reading GSM8K answers, and when the model in memory may be merged from."""

from __future__ import annotations

import pytest

from services.trainer.engine import post_training


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("She pays 3 + 4 = 7 dollars.\n#### 7", "7"),
        ("#### 1,250", "1250"),
        ("The answer is 12.0", "12"),
        ("first 3, then 5, so -2.5", "-2.5"),
        ("#### 8 and then 9", "8"),
        ("no number here", None),
    ],
)
def test_the_final_number_is_the_one_after_the_marks_or_the_last(
    text: str, number: str | None
) -> None:
    assert post_training.final_number(text) == number


class _Quantized:
    is_quantized = True


@pytest.mark.parametrize(
    ("cfg", "model", "env", "expected"),
    [
        ({}, object(), {}, True),
        ({"load_in_4bit": True}, object(), {}, False),  # QLoRA: merge from full precision
        ({"load_in_8bit": True}, object(), {}, False),
        ({}, _Quantized(), {}, False),
        ({"deepspeed": "deepspeed_zero3.json"}, object(), {}, False),  # one shard of several
        ({}, object(), {"WORLD_SIZE": "2"}, False),
    ],
)
def test_only_a_whole_unquantized_model_is_finished_in_memory(
    cfg: dict[str, object],
    model: object,
    env: dict[str, str],
    expected: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert post_training.model_in_memory_will_do(cfg, model) is expected


def test_no_request_means_nothing_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(post_training.SPEC_ENV, raising=False)
    assert post_training.requested() is None
