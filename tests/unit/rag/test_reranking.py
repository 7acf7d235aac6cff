"""The cross-encoder reranker, with a real (tiny, randomly initialised) cross-encoder built
here: no reranker weights ship on this machine, so this checks the plumbing, not quality."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from services.common.embedding import DEFAULT_MODEL, locate_model
from services.common.vectors import HEADER
from services.rag.reranking import CrossEncoderReranker
from services.rag.retrieval import Hit


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-reranker")
    minilm = locate_model(DEFAULT_MODEL)
    assert minilm is not None
    tokenizer = AutoTokenizer.from_pretrained(str(minilm))
    torch.manual_seed(7)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def hit(n: int, text: str, header: str = "") -> Hit:
    return Hit(
        chunk_id=f"c{n}",
        kb_id="kb",
        key=f"k{n}",
        document=f"d{n}.pdf",
        page_start=0,
        page_end=0,
        chunk_index=n,
        text=text,
        score=1.0 / (n + 1),
        metadata={HEADER: header} if header else {},
    )


def test_hits_come_back_ordered_by_the_models_own_scores(tiny_cross_encoder: Path) -> None:
    reranker = CrossEncoderReranker(str(tiny_cross_encoder))
    hits = [
        hit(0, "Revenue grew 12% to $4.1 billion.", header="3M 2022 10-K"),
        hit(1, "The board declared a dividend of $1.49 per share."),
        hit(2, "Operating margin was 19.3% in fiscal 2022."),
        hit(3, "Cash and equivalents were $3.6 billion at year end."),
    ]
    question = "What was the operating margin in 2022?"
    reranked = reranker.rerank(question, hits)

    expected = reranker._model.predict([(question, reranker.passage(h)) for h in hits])
    assert sorted(h.chunk_id for h in reranked) == ["c0", "c1", "c2", "c3"]
    assert [h.score for h in reranked] == sorted((float(s) for s in expected), reverse=True)
    by_id = {h.chunk_id: h.score for h in reranked}
    assert by_id["c2"] == pytest.approx(float(expected[2]))
    assert reranker.passage(hits[0]).startswith("3M 2022 10-K\n")
    assert reranker.rerank(question, []) == []


def test_a_reranker_that_is_not_on_this_machine_is_a_clear_start_up_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(RuntimeError, match="nothing is downloaded at run time"):
        CrossEncoderReranker(str(tmp_path / "no-such-model"))
