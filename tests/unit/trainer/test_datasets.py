import io
import itertools
import json
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.common.embedding import locate_model
from services.common.errors import InvalidInput
from services.trainer import datasets
from services.trainer.datasets import (
    DatasetError,
    Detection,
    Format,
    Problem,
    Row,
    RowError,
    detect_format,
    file_type_for,
    is_eval_row,
    preference_pair,
    preview,
    read_rows,
    split_counts,
    to_messages,
    to_text,
    token_stats,
    validate,
)

SIMPLE_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def jsonl(*records: Any) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def rows_of(*records: dict[str, Any]) -> list[Row]:
    return [Row(number, record) for number, record in enumerate(records, start=1)]


def problems_of(rows: list[Row], fmt: Format) -> list[Problem]:
    return validate(rows, fmt).problems


def only_problem(rows: list[Row], fmt: Format) -> Problem:
    report = validate(rows, fmt)
    assert report.problem_count == 1, report.problems
    assert report.problems[0].fix
    return report.problems[0]


# File types ---------------------------------------------------------------------------------


def test_file_types_come_from_the_extension_and_others_are_refused() -> None:
    assert file_type_for("train.jsonl") == "jsonl"
    assert file_type_for("alpaca_data.JSON") == "jsonl"
    assert file_type_for("sheet.csv") == "csv"
    assert file_type_for("part-0.parquet") == "parquet"
    for name in ("a.pdf", "a.txt", "a.md", "a.docx", "a.html", "docs.zip"):
        assert file_type_for(name) == "documents"
    with pytest.raises(DatasetError) as caught:
        file_type_for("budget.xlsx")
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.code == "unsupported_dataset_type"
    assert caught.value.http_status == 422
    assert "'budget.xlsx'" in caught.value.message and "CSV" in caught.value.message


# Reading ------------------------------------------------------------------------------------


def test_jsonl_lines_are_what_an_editor_shows_and_bad_lines_become_error_rows(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "train.jsonl",
        "\ufeff"
        + jsonl({"instruction": "a", "output": "b"})
        + "\n"  # a blank line 2: skipped, but counted
        + '{"instruction": "c", "output": }\n'
        + "[1, 2]\n"
        + jsonl({"instruction": "é", "output": "d"}).rstrip("\n"),  # no final newline
    )
    rows = list(read_rows(path, "jsonl"))
    assert [row.line for row in rows] == [1, 3, 4, 5]
    assert {row.unit for row in rows} == {"line"}
    assert rows[0].data == {"instruction": "a", "output": "b"} and rows[0].error is None
    assert rows[1].data == {} and rows[1].error is not None
    assert rows[1].error.code == "invalid_json"
    assert rows[1].error.message.startswith("This line is not valid JSON: expecting value")
    assert rows[2].error is not None and rows[2].error.code == "not_an_object"
    assert rows[2].error.message == "This line holds a list, not an object."
    assert rows[3].data["instruction"] == "é"


def test_a_json_array_file_is_read_record_by_record_with_each_record_s_line(
    tmp_path: Path,
) -> None:
    records = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(3)]
    path = write(tmp_path, "alpaca_data.json", json.dumps(records, indent=4))
    rows = list(read_rows(path, "jsonl"))
    assert [row.data for row in rows] == records
    # "[" on line 1, then each record takes 4 lines: "{", two fields, "},".
    assert [row.line for row in rows] == [2, 6, 10]

    broken = write(tmp_path, "broken.json", '[\n  {"a": 1},\n  {"a": 2,,}\n]')
    rows = list(read_rows(broken, "jsonl"))
    assert [row.line for row in rows] == [2, 3]
    assert rows[1].error is not None and rows[1].error.code == "invalid_json"


def test_a_json_array_split_across_read_chunks_keeps_its_records_and_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "_READ_CHUNK", 7)
    records = [{"text": f"record number {i}\nwith an escaped break"} for i in range(5)]
    path = write(tmp_path, "texts.json", json.dumps(records, indent=2))
    rows = list(read_rows(path, "jsonl"))
    assert [row.data for row in rows] == records
    assert [row.line for row in rows] == [2, 5, 8, 11, 14]
    cut = write(tmp_path, "cut.json", json.dumps(records, indent=2)[:-30])
    *_, last = read_rows(cut, "jsonl")
    assert (last.line, last.error) == (
        15,
        RowError("invalid_json", "This line is not valid JSON: unterminated string."),
    )
    unclosed = write(tmp_path, "unclosed.json", '[{"text": "a"},\n')
    *_, last = read_rows(unclosed, "jsonl")
    assert (last.line, last.error) == (
        2,
        RowError("invalid_json", "The file ends before the closing ] of the list."),
    )


def test_csv_records_report_the_line_they_start_on_even_across_multi_line_cells(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "sheet.csv",
        "\ufeffinstruction,input,output\n"
        'Summarise,"line one\nline two\nline three",Short\n'
        "\n"
        "Say hi,,Hello\n"
        "Too,many,values,here\n"
        ",,\n",
    )
    rows = list(read_rows(path, "csv"))
    assert [row.line for row in rows] == [2, 6, 7]
    assert rows[0].data == {
        "instruction": "Summarise",
        "input": "line one\nline two\nline three",
        "output": "Short",
    }
    assert rows[1].data == {"instruction": "Say hi", "input": "", "output": "Hello"}
    assert rows[2].error is not None
    assert rows[2].error.message == "This line has 4 values but the first line names 3 columns."
    problem = validate(rows, "alpaca").problems[0]
    assert (problem.line, problem.unit) == (7, "line")
    assert "double quotes" in problem.fix


def test_csv_messages_columns_hold_json_and_legacy_excel_encodings_are_read(
    tmp_path: Path,
) -> None:
    conversation = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    cell = json.dumps(conversation).replace('"', '""')
    path = write(tmp_path, "chat.csv", f'messages,note\n"{cell}",café\n')
    (row,) = read_rows(path, "csv")
    assert row.data == {"messages": conversation, "note": "café"}

    windows = write(tmp_path, "excel.csv", "text\nna\xefve caf\xe9\n".encode("cp1252"))
    (row,) = read_rows(windows, "csv")
    assert row.data == {"text": "naïve café"}


def test_parquet_rows_are_counted_as_rows_and_keep_nested_messages(tmp_path: Path) -> None:
    conversations = [
        [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
        for i in range(2_500)
    ]
    path = tmp_path / "chat.parquet"
    pq.write_table(pa.table({"messages": conversations}), path, row_group_size=1_000)
    rows = list(read_rows(path, "parquet"))
    assert len(rows) == 2_500
    assert (rows[0].line, rows[0].unit) == (1, "row")
    assert rows[-1].line == 2_500
    assert rows[1_234].data == {"messages": conversations[1_234]}
    assert detect_format(rows).format == "chat"
    assert validate(rows, "chat").valid_rows == 2_500


def test_a_damaged_parquet_file_is_one_problem_with_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.parquet", b"PAR1 this is not really parquet")
    rows = list(read_rows(path, "parquet"))
    assert len(rows) == 1 and rows[0].line == 0
    report = validate(rows, "chat")
    assert (report.rows, report.valid_rows, report.problem_count) == (0, 0, 1)
    problem = report.problems[0]
    assert (problem.line, problem.unit) == (0, "file")
    assert (
        problem.message == "'bad.parquet' is not a Parquet file, or it is damaged; export it again."
    )
    detection = detect_format(read_rows(path, "parquet"))
    assert detection.format is None
    assert detection.reason.startswith("No row could be read. The first problem is at the file:")


def zip_of(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_zip_of_documents_gives_one_text_row_per_document_and_names_the_broken_one(
    tmp_path: Path,
) -> None:
    data = zip_of(
        ("notes/handbook.txt", b"Page one.\fPage two."),
        ("report.pdf", b"%PDF-1.7\nthis is not a real pdf"),
    )
    path = write(tmp_path, "docs.zip", data)
    rows = list(read_rows(path, "documents"))
    assert [(row.line, row.unit) for row in rows] == [(1, "document"), (2, "document")]
    assert rows[0].data == {"text": "Page one.\n\nPage two.", "source": "notes/handbook.txt"}
    assert rows[1].error is not None and rows[1].error.code == "pdf_corrupt"

    detection = detect_format(rows)
    assert detection.format == "text"
    assert detection.reason == (
        "These are documents: their text will be used for continued pre-training."
    )
    report = validate(rows, "text")
    assert (report.rows, report.valid_rows, report.problem_count) == (2, 1, 1)
    problem = report.problems[0]
    assert (problem.line, problem.unit) == (2, "document")
    assert "report.pdf" in problem.message and "damaged" in problem.message
    assert problem.fix == "Replace this file with a readable copy, or remove it."


def test_a_single_document_is_one_row_and_an_unsafe_zip_is_a_problem_with_the_file(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "guide.md", "# Guide\n\nUse the   blue button.\n")
    assert list(read_rows(path, "documents")) == [
        Row(1, {"text": "# Guide\n\nUse the blue button.", "source": "guide.md"}, "document")
    ]
    unsafe = write(tmp_path, "evil.zip", zip_of(("../escape.txt", b"hi")))
    report = validate(read_rows(unsafe, "documents"), "text")
    assert report.rows == 0 and report.problem_count == 1
    assert report.problems[0].unit == "file"
    assert "unsafe path" in report.problems[0].message


def test_preview_pages_through_rows_caps_the_page_and_shortens_long_text(tmp_path: Path) -> None:
    records = [{"text": f"row {i}"} for i in range(150)] + [{"text": "x" * 5_000}]
    path = write(tmp_path, "texts.jsonl", jsonl(*records))
    page = preview(path, "jsonl", offset=10, limit=3)
    assert [row.line for row in page] == [11, 12, 13]
    assert [row.data["text"] for row in page] == ["row 10", "row 11", "row 12"]
    assert len(preview(path, "jsonl", offset=0, limit=1_000)) == 100
    assert preview(path, "jsonl", offset=500, limit=10) == []
    (last,) = preview(path, "jsonl", offset=150, limit=1)
    assert last.data["text"] == "x" * 2_000 + "…"


# Detection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "fmt", "reason"),
    [
        (
            {"instruction": "q", "input": "", "output": "a"},
            "alpaca",
            "Every row has instruction and output: this looks like Alpaca instructions.",
        ),
        (
            {"messages": [{"role": "user", "content": "q"}]},
            "chat",
            "Every row has messages: this looks like chat conversations (OpenAI messages).",
        ),
        (
            {"conversations": [{"from": "human", "value": "q"}]},
            "sharegpt",
            "Every row has conversations: this looks like ShareGPT conversations.",
        ),
        (
            # Has `prompt` and `text` too: the more specific format wins.
            {"prompt": "q", "chosen": "good", "rejected": "bad", "text": "q good"},
            "preference",
            "Every row has prompt, chosen and rejected: this looks like preference pairs "
            "(prompt, chosen, rejected).",
        ),
        (
            {"text": "Once upon a time"},
            "text",
            "Every row has text: this looks like plain text for continued pre-training.",
        ),
    ],
)
def test_each_format_is_detected_with_a_plain_reason(
    record: dict[str, Any], fmt: Format, reason: str
) -> None:
    detection = detect_format(rows_of(record, record, record))
    assert detection == Detection(fmt, 1.0, reason, list(record))


def test_detection_counts_the_rows_that_fit_and_reads_only_the_sample() -> None:
    good = {"instruction": "q", "output": "a"}
    rows = [
        *rows_of(good, good, good, {"question": "q"}),
        Row(5, {}, error=RowError("invalid_json", "This line is not valid JSON.")),
        Row(6, {"other": 1}),
        *[Row(n, {"late": 1}) for n in range(7, 1_000)],
    ]
    detection = detect_format(rows, sample=5)
    assert detection.format == "alpaca"
    assert detection.confidence == pytest.approx(3 / 5)
    assert detection.reason.startswith(
        "3 of the first 5 rows have instruction and output: this looks like Alpaca"
    )
    assert detection.columns == ["instruction", "output", "question", "other"]


def test_when_nothing_fits_the_reason_lists_the_columns_and_what_each_format_needs() -> None:
    detection = detect_format(rows_of({"Instruction": "q", "answer": "a"}))
    assert detection.format is None and detection.confidence == 0.0
    assert detection.columns == ["Instruction", "answer"]
    assert detection.reason.startswith(
        "None of the formats fits the columns found (Instruction, answer). Alpaca instructions "
        "needs instruction and output; chat conversations needs messages;"
    )
    assert "preference pairs needs prompt, chosen and rejected" in detection.reason
    assert detection.reason.endswith(
        "Column names are case-sensitive: rename Instruction to instruction."
    )
    assert detect_format([]).reason == "The file is empty: there are no rows to look at."


# Validation ---------------------------------------------------------------------------------


def test_alpaca_problems_name_the_field_and_say_what_to_write() -> None:
    problem = only_problem(rows_of({"instruction": "Add 2 and 2", "output": "  "}), "alpaca")
    assert problem == Problem(
        1,
        "line",
        "output",
        "The 'output' field is empty.",
        "Write the answer you want the model to give for this instruction, or delete the row.",
    )
    problems = problems_of(rows_of({"output": 4, "input": ["x"]}), "alpaca")
    assert [(p.field, p.message) for p in problems] == [
        ("instruction", "The 'instruction' field is missing."),
        ("output", "The 'output' field must be text, but it is a number."),
        ("input", "The 'input' field must be text, but it is a list."),
    ]
    assert "double quotes" in problems[1].fix
    assert validate(rows_of({"instruction": "q", "output": "a", "input": None}), "alpaca") == (
        validate(rows_of({"instruction": "q", "output": "a"}), "alpaca")
    )


def test_read_errors_become_problems_on_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "t.jsonl", jsonl({"text": "fine"}) + "\n{oops\n" + '"just text"\n')
    report = validate(read_rows(path, "jsonl"), "text")
    assert (report.rows, report.valid_rows, report.problem_count) == (3, 1, 2)
    invalid, not_object = report.problems
    assert (invalid.line, invalid.field) == (3, None)
    assert invalid.message.startswith("This line is not valid JSON")
    assert "missing quote, comma or brace" in invalid.fix
    assert (not_object.line, not_object.message) == (4, "This line holds text, not an object.")


def test_chat_problems() -> None:
    def chat(*turns: Any) -> dict[str, Any]:
        return {"messages": list(turns)}

    user = {"role": "user", "content": "Hi"}
    reply = {"role": "assistant", "content": "Hello!"}
    assert only_problem(rows_of({"messages": "Hi there"}), "chat").message == (
        "The 'messages' field must be a list of messages, but it is text."
    )
    assert only_problem(rows_of({"text": "x"}), "chat").message == (
        "The 'messages' field is missing."
    )
    assert only_problem(rows_of(chat()), "chat").message == "The 'messages' list has no messages."
    problem = only_problem(rows_of(chat(user, {"role": "assistant", "content": [1]})), "chat")
    assert problem.message == "The 'content' of message 2 must be text, but it is a list."
    problem = only_problem(rows_of(chat({"role": "bot", "content": "x"}, reply)), "chat")
    assert problem.message == (
        'Message 1 of 2 has the role "bot", which is not one of system, user, assistant.'
    )
    assert problem.fix.startswith("Use 'user' for what a person says, 'assistant' for")
    problem = only_problem(rows_of(chat(user, {"role": "tool", "content": "{}"}, reply)), "chat")
    assert problem.message == (
        "Message 2 of 3 is a tool message ('tool'); training on tool calls is not supported yet."
    )
    problem = only_problem(rows_of(chat({"role": "system", "content": "Be nice."}, user)), "chat")
    assert problem.message == (
        "The conversation has no assistant message, so there is nothing for the model to learn."
    )
    assert "'assistant'" in problem.fix
    problem = only_problem(rows_of(chat(user, reply, user)), "chat")
    assert problem.message == (
        "The conversation ends with a 'user' message; the last message must be the "
        "assistant's reply."
    )
    assert (
        problem.fix == "Add the assistant's reply at the end, or remove the final 'user' message."
    )
    assert only_problem(
        rows_of(chat(user, {"role": "assistant", "content": ""})), "chat"
    ).message == ("Message 2 of 2 is empty.")
    assert validate(rows_of(chat(user, reply)), "chat").valid_rows == 1


def test_sharegpt_speaks_in_its_own_words_and_accepts_openai_roles() -> None:
    good = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}
    also = {"conversations": [{"from": "user", "value": "Hi"}, {"from": "assistant", "value": "!"}]}
    assert validate(rows_of(good, also), "sharegpt").valid_rows == 2
    problem = only_problem(
        rows_of({"conversations": [{"from": "human", "value": "Hi"}]}), "sharegpt"
    )
    assert (
        problem.fix
        == "Add the reply you want the model to give, as a message whose 'from' is 'gpt'."
    )
    problem = only_problem(
        rows_of({"conversations": [{"from": "human"}, good["conversations"][1]]}), "sharegpt"
    )
    assert problem.message == "Message 1 of 2 has no 'value'."


def test_preference_pairs_need_two_different_answers() -> None:
    problem = only_problem(
        rows_of({"prompt": "2+2?", "chosen": "4", "rejected": "4"}), "preference"
    )
    assert (problem.field, problem.message) == (
        "rejected",
        "The chosen and rejected answers are the same.",
    )
    assert "worse answer" in problem.fix
    problems = problems_of(rows_of({"prompt": "2+2?", "chosen": ""}), "preference")
    assert [p.message for p in problems] == [
        "The 'chosen' field is empty.",
        "The 'rejected' field is missing.",
    ]
    # TRL's conversational layout: lists of messages.
    row = {
        "prompt": [{"role": "user", "content": "2+2?"}],
        "chosen": [{"role": "assistant", "content": "4"}],
        "rejected": [{"role": "assistant", "content": "5"}],
    }
    assert validate(rows_of(row), "preference").valid_rows == 1


def test_duplicates_are_counted_and_only_the_first_few_listed() -> None:
    same = {"instruction": "q", "output": "a"}
    rows = rows_of(same, {"instruction": "q", "output": "a", "id": 7}, *[same] * 8, {"x": 1})
    report = validate(rows, "alpaca")
    assert (report.rows, report.valid_rows, report.duplicates) == (11, 1, 9)
    assert report.problem_count == 9 + 2  # the last row misses both fields
    duplicate = report.problems[0]
    assert (duplicate.line, duplicate.message) == (2, "This line is the same as line 1.")
    assert "Delete one of the copies" in duplicate.fix
    assert [p.line for p in report.problems] == [2, 3, 4, 5, 6, 11, 11]


def test_max_problems_caps_the_list_but_not_the_count() -> None:
    rows = rows_of(*[{"instruction": "", "output": ""} for _ in range(30)])
    report = validate(rows, "alpaca", max_problems=5)
    assert (report.rows, report.valid_rows, report.problem_count) == (30, 0, 60)
    assert [(p.line, p.field) for p in report.problems] == [
        (1, "instruction"),
        (1, "output"),
        (2, "instruction"),
        (2, "output"),
        (3, "instruction"),
    ]


def test_an_empty_file_is_one_clear_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.jsonl", "\n\n")
    report = validate(read_rows(path, "jsonl"), "alpaca")
    assert (report.rows, report.valid_rows, report.problem_count) == (0, 0, 1)
    problem = report.problems[0]
    assert (problem.line, problem.unit, problem.field) == (0, "file", None)
    assert problem.message == "The file is empty: it has no rows to train on."


# Conversion ---------------------------------------------------------------------------------


def test_rows_become_the_messages_they_train_on() -> None:
    assert to_messages(
        {"instruction": "Translate", "input": "chat", "output": "cat"}, "alpaca"
    ) == [
        {"role": "user", "content": "Translate\n\nchat"},
        {"role": "assistant", "content": "cat"},
    ]
    assert to_messages({"instruction": "Hi", "input": "", "output": "Yo"}, "alpaca")[0] == {
        "role": "user",
        "content": "Hi",
    }
    sharegpt = {
        "conversations": [
            {"from": "system", "value": "S"},
            {"from": "human", "value": "H"},
            {"from": "gpt", "value": "G"},
        ]
    }
    assert [m["role"] for m in to_messages(sharegpt, "sharegpt")] == ["system", "user", "assistant"]
    chat = {
        "messages": [
            {"role": "user", "content": "q", "name": "x"},
            {"role": "assistant", "content": "a"},
        ]
    }
    assert to_messages(chat, "chat") == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
    ]
    assert to_text(chat, "chat") == "user: q\nassistant: a"
    pair = {"prompt": "2+2?", "chosen": "4", "rejected": "5"}
    assert to_messages(pair, "preference") == [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    # UltraFeedback repeats the prompt inside each answer's list; it is not doubled.
    repeated = {
        "prompt": "2+2?",
        "chosen": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
        "rejected": [{"role": "assistant", "content": "5"}],
    }
    chosen, rejected = preference_pair(repeated)
    assert [m["content"] for m in chosen] == ["2+2?", "4"]
    assert [m["content"] for m in rejected] == ["2+2?", "5"]
    assert to_messages({"text": "t"}, "text") == []
    assert to_text({"text": "t"}, "text") == "t"


# Token statistics ---------------------------------------------------------------------------


@pytest.fixture
def minilm() -> Any:
    """A tokenizer without a chat template (a fresh one per test: some tests give it one)."""
    from transformers import AutoTokenizer

    folder = locate_model("all-MiniLM-L6-v2")
    assert folder is not None
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert not tokenizer.chat_template
    return tokenizer


def test_text_token_stats_count_valid_rows_and_those_over_the_sequence_length(
    minilm: Any,
) -> None:
    # "a a ... a" with n words is n word pieces plus [CLS] and [SEP].
    rows = rows_of(*[{"text": " ".join(["a"] * n)} for n in range(1, 21)], {"text": ""})
    rows.append(Row(22, {}, error=None))
    stats = token_stats(rows, "text", minilm, sequence_len=10)
    lengths = list(range(3, 23))
    assert stats.rows == 20
    assert stats.total_tokens == sum(lengths)
    assert (stats.min, stats.max) == (3, 22)
    assert stats.mean == pytest.approx(sum(lengths) / 20)
    assert (stats.p50, stats.p95) == (12, 21)
    assert stats.over_sequence_len == 12  # 11..22
    assert stats.sequence_len == 10
    empty = token_stats([], "text", minilm, sequence_len=10)
    assert (empty.rows, empty.total_tokens, empty.max, empty.mean) == (0, 0, 0, 0.0)


def test_without_a_chat_template_conversations_count_as_role_content_lines(minilm: Any) -> None:
    row = {"instruction": "What is two plus two?", "output": "Four."}
    stats = token_stats(rows_of(row), "alpaca", minilm, sequence_len=8)
    expected = len(minilm("user: What is two plus two?\nassistant: Four.")["input_ids"])
    assert stats.max == stats.total_tokens == expected
    assert stats.over_sequence_len == 1


def test_with_a_chat_template_conversations_are_rendered_by_it(minilm: Any) -> None:
    minilm.chat_template = SIMPLE_TEMPLATE
    pair = {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "It is Lyon, I think."}
    stats = token_stats(rows_of(pair), "preference", minilm, sequence_len=1_000)
    longer = "<|user|>Capital of France?\n<|assistant|>It is Lyon, I think.\n"
    assert stats.total_tokens == len(minilm(longer, add_special_tokens=False)["input_ids"])

    minilm.chat_template = "{{ raise_exception('roles must alternate') }}"
    chat = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    stats = token_stats(rows_of(chat), "chat", minilm, sequence_len=10)
    assert (stats.rows, stats.skipped) == (0, 1)


# Train / eval split -------------------------------------------------------------------------


def test_split_counts_keep_at_least_one_row_on_each_side() -> None:
    assert split_counts(1_000, 0.1) == (900, 100)
    assert split_counts(10, 0.01) == (9, 1)
    assert split_counts(2, 0.9) == (1, 1)
    assert split_counts(1, 0.5) == (1, 0)
    assert split_counts(50, 0.0) == (50, 0)
    assert split_counts(0, 0.1) == (0, 0)
    with pytest.raises(DatasetError):
        split_counts(10, 1.0)


def test_eval_rows_are_the_same_every_run_and_exact_when_the_row_count_is_given() -> None:
    first = [is_eval_row(i, 0.2, "dataset-1") for i in range(2_000)]
    assert first == [is_eval_row(i, 0.2, "dataset-1") for i in range(2_000)]
    assert first != [is_eval_row(i, 0.2, "dataset-2") for i in range(2_000)]
    assert 300 < sum(first) < 500
    assert not any(is_eval_row(i, 0.0, "dataset-1") for i in range(100))

    for rows, fraction in ((10, 0.01), (7, 0.5), (1_000, 0.1), (997, 0.33)):
        held_out = [i for i in range(rows) if is_eval_row(i, fraction, "s", rows=rows)]
        assert len(held_out) == split_counts(rows, fraction)[1]
        assert held_out == [i for i in range(rows) if is_eval_row(i, fraction, "s", rows=rows)]
    # Spread through the file, not one block: a file sorted by topic gets every topic.
    held_out = [i for i in range(1_000) if is_eval_row(i, 0.1, "s", rows=1_000)]
    assert max(b - a for a, b in itertools.pairwise(held_out)) == 10
