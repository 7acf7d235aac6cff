"""The bundled SmolLM2, converted from its GGUF, served by vLLM from the engine environment
(the session's `deployed` deployment) and answered through the official openai client: the
path deployments and RAG build on."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from services.common.bundled_model import ensure_hf_model
from services.trainer.datasets import Row, token_stats
from tests.integration.conftest import MODELS_DIR, Stack
from tests.integration.deployment_helpers import Deployed

# Trains, serves or starts platforms: runs after the rest of the folder (tests/conftest.py).
pytestmark = pytest.mark.slow


def test_the_bundled_model_is_a_complete_hf_folder() -> None:
    model_dir = ensure_hf_model(MODELS_DIR)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (model_dir / name).is_file()
    assert (model_dir / "model.safetensors").stat().st_size > 400_000_000  # fp32, ~538 MB


def test_the_bundled_model_s_own_chat_template_gives_its_token_count() -> None:
    """The trainer counts a chat dataset's tokens with the model's own chat template
    (here, not in tests/unit, because it needs the converted model)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ensure_hf_model(MODELS_DIR))
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    encoded = tokenizer.apply_chat_template(messages, tokenize=True)
    ids = encoded["input_ids"] if isinstance(encoded, Mapping) else encoded
    stats = token_stats([Row(1, {"messages": messages})], "chat", tokenizer, sequence_len=16)
    assert stats.total_tokens == len(ids) > 16  # the template adds its default system prompt
    assert stats.over_sequence_len == 1


def test_chat_through_the_openai_client(stack: Stack, deployed: Deployed) -> None:
    client = deployed.openai(stack.url)
    assert [m.id for m in client.models.list().data] == [deployed.name]
    reply = client.chat.completions.create(
        model=deployed.name,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=40,
        temperature=0,
    )
    assert "Paris" in (reply.choices[0].message.content or "")


def test_streamed_chat(stack: Stack, deployed: Deployed) -> None:
    client = deployed.openai(stack.url)
    stream = client.chat.completions.create(
        model=deployed.name,
        messages=[{"role": "user", "content": "Count from one to five."}],
        max_tokens=30,
        temperature=0,
        stream=True,
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len([p for p in pieces if p]) > 3  # tokens arrived one by one, not all at once
    assert "".join(pieces).strip()
