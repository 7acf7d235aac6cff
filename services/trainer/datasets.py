"""Fine-tuning datasets: read the upload, detect its format, validate it, count its tokens.

A non-technical user uploads a file and must be told, before any compute is spent, what we
think it is and what is wrong with it, in words they can act on: every `Problem` names the
line (or row, or document) as their editor or spreadsheet shows it, says what is wrong, and
says how to fix it. So nothing here raises on bad content: a line that is not JSON becomes a
`Row` with an `error`, and `validate` turns it into a problem like any other. Only a file
that cannot be read at all (a damaged Parquet file, a refused zip) raises `InvalidInput`.

Files are streamed: a JSONL or CSV upload can be gigabytes, so rows are read one at a time
and only counters, token lengths and 16-byte hashes (for duplicates) are kept per row.

Formats (`Format`):

- `alpaca`: `instruction`, optional `input`, `output` (one question, one answer).
- `chat`: `messages`, a list of `{"role", "content"}` with the OpenAI roles `system`, `user`
  and `assistant`. Tool messages (`tool`, `function`, ...) are refused: training on tool
  calls needs the `tool_calls` fields and a chat template that renders them, and most base
  models' templates (SmolLM2's among them) have neither, so such rows would train on
  something other than what the user wrote.
- `sharegpt`: `conversations`, a list of `{"from", "value"}` with `from` one of `human`,
  `gpt`, `system` (`user` and `assistant` are accepted too).
- `preference`: `prompt`, `chosen`, `rejected` for DPO. Each is text, or a list of messages
  (the TRL conversational layout; a `chosen` list may repeat the prompt, as UltraFeedback's
  does).
- `text`: `text`, for continued pre-training. Documents (PDF, Word, text, Markdown, HTML, or
  a zip of them) become `text` rows too, one row per document, not per page: training packs
  text into `sequence_len` windows anyway, and page breaks fall mid-sentence, so splitting by
  page would only add false boundaries. A document longer than `sequence_len` is split into
  windows at training time; `TokenStats.over_sequence_len` counts such documents.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Literal, NamedTuple, get_args

import pyarrow as pa
import pyarrow.parquet as pq

from services.common.archives import iter_zip_members
from services.common.documents import (
    DEFAULT_MAX_BYTES,
    SUPPORTED_EXTENSIONS,
    ExtractionError,
    extract,
)
from services.common.errors import InvalidInput

Format = Literal["alpaca", "chat", "sharegpt", "preference", "text"]
FileType = Literal["jsonl", "csv", "parquet", "documents"]
# What the UI calls a position: "line 12" in JSONL and CSV, "row 12" in Parquet (which has
# no lines), "document 3" in a zip of documents. "file" (with line 0) is the file as a whole.
Unit = Literal["line", "row", "document"]
ProblemUnit = Literal["line", "row", "document", "file"]

FORMATS: tuple[Format, ...] = get_args(Format)
REQUIRED_FIELDS: dict[Format, tuple[str, ...]] = {
    "alpaca": ("instruction", "output"),
    "chat": ("messages",),
    "sharegpt": ("conversations",),
    "preference": ("prompt", "chosen", "rejected"),
    "text": ("text",),
}
# Column names that mean the same as Alpaca's, as exported by common datasets (GSM8K has
# question/answer, many others prompt/response or prompt/completion). A row is read through
# `_alpaca_view`, so the file never needs renaming.
ALPACA_ALIASES: dict[str, tuple[str, ...]] = {
    "instruction": ("question", "prompt", "query"),
    "output": ("answer", "response", "completion"),
}
FORMAT_NAMES: dict[Format, str] = {
    "alpaca": "Alpaca instructions",
    "chat": "chat conversations (OpenAI messages)",
    "sharegpt": "ShareGPT conversations",
    "preference": "preference pairs (prompt, chosen, rejected)",
    "text": "plain text for continued pre-training",
}
PREVIEW_MAX_ROWS = 100

_FILE_TYPES: dict[str, FileType] = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".zip": "documents",
    **{extension: "documents" for extension in SUPPORTED_EXTENSIONS},
}
# When two formats fit a row equally (a row with `messages` and `text`), the more specific
# one wins: it is the one whose fields were written on purpose.
_SPECIFICITY: tuple[Format, ...] = ("preference", "chat", "sharegpt", "alpaca", "text")
CHAT_ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}
_TOOL_ROLES = frozenset(
    {"tool", "function", "ipython", "tool_call", "tool_response", "function_call", "observation"}
)
# CSV cells are text; these columns hold a JSON list when the format needs one.
_JSON_COLUMNS = frozenset({"messages", "conversations"})
_MAYBE_JSON_COLUMNS = frozenset({"prompt", "chosen", "rejected"})
_UNITS: dict[FileType, Unit] = {
    "jsonl": "line",
    "csv": "line",
    "parquet": "row",
    "documents": "document",
}
_READ_CHUNK = 1024 * 1024
# A JSON array is parsed one record at a time; a record that is still incomplete after this
# many characters is a broken file, not a big record.
_MAX_RECORD_CHARS = 64 * 1024 * 1024
# A long document in one CSV cell is legitimate; csv's default limit is 128 KiB.
_CSV_FIELD_LIMIT = 256 * 1024 * 1024
# Each of the first few duplicates is listed; the rest are only counted, so that a file with
# thousands of repeats still shows its other problems.
_LISTED_DUPLICATES = 5
_TOKEN_BATCH = 64


class DatasetError(InvalidInput):
    """A dataset file that cannot be used at all (as opposed to rows with problems)."""


@dataclass(frozen=True, slots=True)
class RowError:
    """Why a row could not be read: `code` for programs, `message` for the person."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Row:
    line: int  # 1-based, as the user's editor counts: JSONL/CSV line, Parquet row, document
    data: dict[str, Any]
    unit: Unit = "line"
    # Set when the row could not be read; `data` is then {} (a document keeps its `source`).
    error: RowError | None = None


@dataclass(frozen=True, slots=True)
class Detection:
    format: Format | None
    confidence: float  # share of the sampled rows that have the format's required fields
    reason: str
    columns: list[str]


@dataclass(frozen=True, slots=True)
class Problem:
    line: int  # 0 for a problem with the whole file
    unit: ProblemUnit
    field: str | None
    message: str
    fix: str


@dataclass(frozen=True, slots=True)
class ValidationReport:
    rows: int
    valid_rows: int
    problems: list[Problem]  # the first `max_problems`
    problem_count: int  # all of them
    duplicates: int = 0  # rows that repeat an earlier row's training content


@dataclass(frozen=True, slots=True)
class TokenStats:
    rows: int  # valid rows counted
    total_tokens: int
    min: int
    mean: float
    p50: int
    p95: int
    max: int
    over_sequence_len: int
    sequence_len: int
    # Valid rows the tokenizer's chat template refused (some insist on strictly alternating
    # user/assistant turns); they are not counted above.
    skipped: int = 0


def file_type_for(name: str) -> FileType:
    """The file type of an upload, from its extension."""
    file_type = _FILE_TYPES.get(PurePosixPath(name).suffix.lower())
    if file_type is None:
        raise DatasetError(
            "unsupported_dataset_type",
            f"'{name}' is not a supported dataset file. Upload JSON Lines (.jsonl), CSV, "
            "Parquet, or documents (PDF, Word, text, Markdown, HTML, or a .zip of them); "
            "a spreadsheet can be saved as CSV.",
        )
    return file_type


# Reading ------------------------------------------------------------------------------------


def read_rows(path: Path, file_type: FileType, *, name: str | None = None) -> Iterator[Row]:
    """The rows of a dataset file, streamed, with the positions a user would look for.

    `name` is the name the user uploaded (it names documents in messages); it defaults to
    the file's own name. Nothing about the content raises: a file that cannot be read as a
    whole (a damaged Parquet file, a zip refused as unsafe) ends the rows with one error row
    at line 0, which `validate` reports as a problem with the file.
    """
    unit: Unit = _UNITS[file_type]
    try:
        if file_type == "jsonl":
            with path.open("rb") as handle:
                yield from _read_jsonl(handle)
        elif file_type == "csv":
            with path.open("rb") as handle:
                yield from _read_csv(handle)
        elif file_type == "parquet":
            yield from _read_parquet(path, name or path.name)
        else:
            yield from _read_documents(path, name or path.name)
    except InvalidInput as exc:
        # A zip can be refused after some of its documents were read (a nested zip, a
        # member that inflates past its header); the upload as a whole is unusable then.
        yield Row(0, {}, unit=unit, error=RowError(exc.code, exc.message))


def preview(
    path: Path,
    file_type: FileType,
    offset: int,
    limit: int,
    *,
    name: str | None = None,
    max_chars: int = 2_000,
) -> list[Row]:
    """Rows `offset` to `offset + limit` (at most 100), text values cut at `max_chars`.

    The cut keeps a preview of a dataset of whole books small; validation and training
    always read the full rows.
    """
    start = max(0, offset)
    stop = start + max(0, min(limit, PREVIEW_MAX_ROWS))
    rows = itertools.islice(read_rows(path, file_type, name=name), start, stop)
    return [replace(row, data=_shorten(row.data, max_chars)) for row in rows]


def _shorten(value: Any, max_chars: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= max_chars else value[:max_chars] + "…"
    if isinstance(value, list):
        return [_shorten(item, max_chars) for item in value]
    if isinstance(value, dict):
        return {key: _shorten(item, max_chars) for key, item in value.items()}
    return value


def _text_lines(handle: BinaryIO) -> Iterator[str]:
    """Physical lines, with their endings, decoded the way spreadsheet exports need.

    UTF-8 is expected, but Excel on Windows writes "CSV" in the legacy code page and
    "Unicode text" in UTF-16; neither should fail over a stray byte.
    """
    head = handle.read(2)
    handle.seek(0)
    if head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        yield from io.TextIOWrapper(handle, encoding="utf-16", errors="replace", newline="")
        return
    for number, raw in enumerate(handle):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("cp1252", errors="replace")
        yield line.removeprefix("\ufeff") if number == 0 else line


def _read_jsonl(handle: BinaryIO) -> Iterator[Row]:
    # Many "JSON" datasets (Alpaca's own among them) are one array rather than JSON Lines.
    if handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
        handle.seek(0)
        yield from _read_json_array(handle)
        return
    handle.seek(0)
    for number, line in enumerate(_text_lines(handle), start=1):
        if line.strip():
            yield _json_row(number, line)


def _json_row(line: int, text: str) -> Row:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return Row(line, {}, error=_invalid_json(exc))
    return _object_row(line, value)


def _object_row(line: int, value: Any) -> Row:
    if isinstance(value, dict):
        return Row(line, value)
    return Row(
        line,
        {},
        error=RowError("not_an_object", f"This line holds {_kind(value)}, not an object."),
    )


def _invalid_json(exc: json.JSONDecodeError, *, column: bool = True) -> RowError:
    # json says "Unterminated string starting at", meaning the position that follows.
    detail = exc.msg.removesuffix(" starting at")
    detail = f"{detail[:1].lower()}{detail[1:]}"
    if column:
        detail += f" at column {exc.colno}"
    return RowError("invalid_json", f"This line is not valid JSON: {detail}.")


def _read_json_array(handle: BinaryIO) -> Iterator[Row]:
    """The objects of a top-level JSON array, one at a time, each with its first line."""
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="replace", newline="")
    decoder = json.JSONDecoder()
    buffer, pos, line = "", 0, 1
    eof = opened = expect_comma = need_more = False
    while True:
        if need_more or pos >= len(buffer):
            if eof:
                message = "The file ends before the closing ] of the list."
                yield Row(line, {}, error=RowError("invalid_json", message))
                return
            chunk = text.read(_READ_CHUNK)
            buffer, pos, eof, need_more = buffer[pos:] + chunk, 0, not chunk, False
            if len(buffer) > _MAX_RECORD_CHARS:
                message = "This record is not valid JSON, or it is far too long."
                yield Row(line, {}, error=RowError("invalid_json", message))
                return
            continue
        char = buffer[pos]
        if char in " \t\r\n":
            line += char == "\n"
            pos += 1
        elif not opened:
            opened, pos = True, pos + 1  # the "[" that sent us here
        elif char == "]":
            return
        elif expect_comma:
            if char != ",":
                message = "This line is not valid JSON: a comma is missing between records."
                yield Row(line, {}, error=RowError("invalid_json", message))
                return
            expect_comma, pos = False, pos + 1
        else:
            try:
                value, end = decoder.raw_decode(buffer, pos)
            except json.JSONDecodeError as exc:
                if not eof:
                    need_more = True  # most likely a record cut by the chunk boundary
                    continue
                # No column: the buffer does not start at the start of a line.
                error = _invalid_json(exc, column=False)
                yield Row(line + buffer.count("\n", pos, exc.pos), {}, error=error)
                return
            yield _object_row(line, value)
            line += buffer.count("\n", pos, end)
            pos, expect_comma = end, True


class _Lines:
    """Counts the physical lines csv.reader has taken, so a record knows where it began."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.count = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.count += 1
        return line


def _read_csv(handle: BinaryIO) -> Iterator[Row]:
    # Process-wide, but only ever raised: a ceiling on one cell, not a setting anyone relies on.
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    lines = _Lines(_text_lines(handle))
    reader = csv.reader(lines)
    header: list[str] | None = None
    while True:
        # A quoted cell can span lines: the record starts on the line after the last one read.
        start = lines.count + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            message = f"The file cannot be read as CSV from this line on ({exc})."
            yield Row(start, {}, error=RowError("csv_unreadable", message))
            return
        if not any(cell.strip() for cell in cells):
            continue  # blank lines, and the ",,," lines spreadsheets leave at the end
        if header is None:
            header = [cell.strip() for cell in cells]
            continue
        if len(cells) != len(header):
            message = (
                f"This line has {len(cells)} values but the first line names {len(header)} columns."
            )
            yield Row(start, {}, error=RowError("csv_wrong_cell_count", message))
            continue
        yield Row(
            start, {key: _csv_cell(key, cell) for key, cell in zip(header, cells, strict=True)}
        )


def _csv_cell(column: str, cell: str) -> Any:
    if column not in _JSON_COLUMNS and column not in _MAYBE_JSON_COLUMNS:
        return cell
    if not cell.lstrip().startswith("["):
        return cell
    try:
        value = json.loads(cell)
    except json.JSONDecodeError:
        return cell  # validation says the column needs a JSON list
    if column in _JSON_COLUMNS:
        return value
    # "[1] Yes" is an answer, not a conversation: only a list of messages is taken as one.
    is_messages = isinstance(value, list) and all(isinstance(item, dict) for item in value)
    return value if is_messages and value else cell


def _read_parquet(path: Path, name: str) -> Iterator[Row]:
    try:
        parquet = pq.ParquetFile(path)
        number = 0
        for batch in parquet.iter_batches(batch_size=1_000):
            for record in batch.to_pylist():
                number += 1
                yield Row(number, record, unit="row")
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(
            "dataset_unreadable",
            f"'{name}' is not a Parquet file, or it is damaged; export it again.",
        ) from exc


def _read_documents(path: Path, name: str) -> Iterator[Row]:
    if PurePosixPath(name).suffix.lower() != ".zip":
        size = path.stat().st_size
        if size > DEFAULT_MAX_BYTES:
            message = (
                f"'{name}' is {size / 2**20:,.1f} MiB; documents up to "
                f"{DEFAULT_MAX_BYTES / 2**20:,.0f} MiB can be used."
            )
            yield Row(1, {}, unit="document", error=RowError("file_too_large", message))
            return
        yield _document_row(1, name, path.read_bytes())
        return
    with path.open("rb") as handle:
        # Refusals (a zip bomb, an unsafe path, a password) raise InvalidInput: the whole
        # upload is unusable, not one document in it.
        for number, member in enumerate(iter_zip_members(handle), start=1):
            yield _document_row(number, member.name, member.data)


def _document_row(number: int, name: str, data: bytes) -> Row:
    try:
        document = extract(name, data)
    except ExtractionError as exc:
        # The reason already names the file ("'report.pdf' is damaged ...").
        return Row(number, {"source": name}, unit="document", error=RowError(exc.code, exc.reason))
    text = "\n\n".join(page.text for page in document.pages if page.text)
    return Row(number, {"text": text, "source": name}, unit="document")


# Detection ----------------------------------------------------------------------------------


def detect_format(rows: Iterable[Row], sample: int = 200) -> Detection:
    """The format most of the first `sample` readable rows fit, with a sentence saying why."""
    columns: dict[str, None] = {}
    matches = dict.fromkeys(FORMATS, 0)
    good = 0
    first_error: Row | None = None
    documents = False
    # Reading stops early on a file that is all errors, instead of scanning all of it.
    for row in itertools.islice(rows, sample * 5):
        if row.error is not None:
            first_error = first_error or row
            continue
        good += 1
        documents = documents or row.unit == "document"
        columns.update(dict.fromkeys(row.data))
        for fmt in FORMATS:
            data = _alpaca_view(row.data) if fmt == "alpaca" else row.data
            matches[fmt] += all(field in data for field in REQUIRED_FIELDS[fmt])
        if good >= sample:
            break
    found = list(columns)
    if good == 0:
        if first_error is None:
            return Detection(None, 0.0, "The file is empty: there are no rows to look at.", [])
        message = first_error.error.message if first_error.error is not None else ""
        where = f"{first_error.unit} {first_error.line}" if first_error.line else "the file"
        reason = f"No row could be read. The first problem is at {where}: {message}"
        return Detection(None, 0.0, reason, [])
    best = max(_SPECIFICITY, key=lambda fmt: matches[fmt])  # max keeps the first of ties
    if matches[best] == 0:
        return Detection(None, 0.0, _no_format_reason(found), found)
    confidence = matches[best] / good
    fields = _and(REQUIRED_FIELDS[best])
    if best == "alpaca":
        fields = _and(_alpaca_columns(found))
    if documents and best == "text":
        reason = "These are documents: their text will be used for continued pre-training."
    elif matches[best] == good:
        every = "The row has" if good == 1 else "Every row has"
        reason = f"{every} {fields}: this looks like {FORMAT_NAMES[best]}."
    else:
        reason = (
            f"{matches[best]} of the first {good} rows have {fields}: this looks like "
            f"{FORMAT_NAMES[best]}. The other rows will be listed as problems when you validate."
        )
    return Detection(best, confidence, reason, found)


def _alpaca_view(data: dict[str, Any]) -> dict[str, Any]:
    """The row with alias columns read as `instruction`/`output` (see ALPACA_ALIASES); a
    preference row's `prompt` is left alone."""
    if "instruction" in data and "output" in data:
        return data
    if "chosen" in data or "rejected" in data:
        return data
    view = dict(data)
    for field, aliases in ALPACA_ALIASES.items():
        if field not in view:
            alias = next((a for a in aliases if a in data), None)
            if alias is not None:
                view[field] = data[alias]
    return view


def _alpaca_columns(columns: list[str]) -> tuple[str, ...]:
    """The columns actually read as instruction and output, for the detection sentence."""
    chosen = []
    for field, aliases in ALPACA_ALIASES.items():
        chosen.append(
            field if field in columns else next((a for a in aliases if a in columns), field)
        )
    return tuple(chosen)


def _no_format_reason(columns: list[str]) -> str:
    needs = "; ".join(
        f"{FORMAT_NAMES[fmt].split(' (')[0]} needs {_and(REQUIRED_FIELDS[fmt])}" for fmt in FORMATS
    )
    reason = (
        f"None of the formats fits the columns found ({', '.join(columns) or 'none'}). "
        f"{needs[:1].upper()}{needs[1:]}. Rename your columns, or pick the format yourself."
    )
    known = {field for fields in REQUIRED_FIELDS.values() for field in fields}
    wrong_case = [column for column in columns if column.lower() in known and column not in known]
    if wrong_case:
        renames = ", ".join(f"{column} to {column.lower()}" for column in wrong_case)
        reason += f" Column names are case-sensitive: rename {renames}."
    return reason


def _and(words: Iterable[str]) -> str:
    items = list(words)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


# Validation ---------------------------------------------------------------------------------


class _Issue(NamedTuple):
    field: str | None
    message: str
    fix: str


class _TurnStyle(NamedTuple):
    field: str  # "messages"
    role_key: str  # "role"
    content_key: str  # "content"
    roles: dict[str, str]  # as written -> OpenAI role


_CHAT = _TurnStyle("messages", "role", "content", {role: role for role in CHAT_ROLES})
_SHAREGPT = _TurnStyle("conversations", "from", "value", SHAREGPT_ROLES)

_FIELD_FIXES: dict[str, str] = {
    "instruction": "Write the task or question for the model, or delete the row.",
    "output": "Write the answer you want the model to give for this instruction, "
    "or delete the row.",
    "text": "Put the text the model should learn from in it, or delete the row.",
    "prompt": "Write the question or request both answers respond to, or delete the row.",
    "chosen": "Write the better answer, the one you want the model to prefer, or delete the row.",
    "rejected": "Write the worse answer, the one you want the model to avoid, or delete the row.",
    "messages": "Add the conversation as a list of messages, or delete the row.",
    "conversations": "Add the conversation as a list of turns, or delete the row.",
}
_ROW_ERROR_FIXES: dict[str, str] = {
    "invalid_json": "Each line must hold one complete JSON object in curly braces { }. Look "
    "for a missing quote, comma or brace, or a record split over several lines.",
    "not_an_object": "Each line must be one JSON object in curly braces { } with named "
    "fields; fix the line or delete it.",
    "csv_wrong_cell_count": "A value probably contains a comma or a quote: put that value in "
    'double quotes ("like, this"), or save the file again as CSV from your spreadsheet.',
    "csv_unreadable": "Open the file in a spreadsheet program and save it again as CSV "
    "(comma-separated, UTF-8).",
    "pdf_password_required": "Upload a copy of this document without a password.",
    "no_text": "Upload a version with selectable text (a scanned PDF needs OCR first), "
    "or remove it.",
    "file_too_large": "Split the document into smaller files.",
    "unsupported_type": "Remove this file, or convert it to PDF, Word, text, Markdown or HTML.",
    "dataset_unreadable": "Export the file again as Parquet, or upload it as JSONL or CSV.",
}
_DEFAULT_ROW_ERROR_FIX = "Replace this file with a readable copy, or remove it."
_ARCHIVE_FIXES: dict[str, str] = {
    "archive_too_large": "Split the documents into several smaller zip files.",
    "archive_too_many_files": "Split the documents into several smaller zip files.",
    "archive_encrypted": "Create the zip again without a password.",
}
_DEFAULT_ARCHIVE_FIX = (
    'Create the zip again with your computer\'s standard "Compress" command, with the '
    "documents directly inside it (no zips inside the zip), and upload it again."
)


def _error_fix(code: str) -> str:
    if code.startswith("archive_"):
        return _ARCHIVE_FIXES.get(code, _DEFAULT_ARCHIVE_FIX)
    return _ROW_ERROR_FIXES.get(code, _DEFAULT_ROW_ERROR_FIX)


def _judged(rows: Iterable[Row], fmt: Format) -> Iterator[tuple[Row, list[_Issue], int | None]]:
    """Each row with its issues, and the line of the earlier row it repeats (or None).

    Duplicates are rows whose training content (what `to_messages`/`to_text` give) repeats
    an earlier row's; the first copy stays valid, the repeats do not.
    """
    first_seen: dict[bytes, int] = {}
    for row in rows:
        issues = _row_issues(row, fmt)
        if issues:
            yield row, issues, None
            continue
        earlier = first_seen.setdefault(_content_key(row.data, fmt), row.line)
        yield row, [], earlier if earlier != row.line else None


def training_rows(rows: Iterable[Row], fmt: Format) -> Iterator[Row]:
    """The rows `validate` counts as valid, in file order: what a job trains on. The n-th
    of them (from 0) is held out for evaluation when `is_eval_row(n, ...)` says so."""
    for row, issues, repeats in _judged(rows, fmt):
        if row.line > 0 and not issues and repeats is None:
            yield row


def validate(rows: Iterable[Row], fmt: Format, *, max_problems: int = 20) -> ValidationReport:
    """Every problem of every row as `fmt`; a row with any problem, or repeating an earlier
    row, is not valid."""
    problems: list[Problem] = []
    problem_count = total = valid = duplicates = 0
    whole_file = False

    def report(problem: Problem) -> None:
        nonlocal problem_count
        problem_count += 1
        if len(problems) < max_problems:
            problems.append(problem)

    for row, issues, earlier in _judged(rows, fmt):
        # Line 0 is the file as a whole (see `read_rows`): a problem, but not a row.
        total += row.line > 0
        whole_file = whole_file or row.line == 0
        unit: ProblemUnit = row.unit if row.line else "file"
        for issue in issues:
            report(Problem(row.line, unit, issue.field, issue.message, issue.fix))
        if issues:
            continue
        if earlier is not None:
            duplicates += 1
            problem = Problem(
                row.line,
                row.unit,
                None,
                f"This {row.unit} is the same as {row.unit} {earlier}.",
                "Delete one of the copies: repeated rows make the model over-learn them.",
            )
            problem_count += 1
            if duplicates <= _LISTED_DUPLICATES and len(problems) < max_problems:
                problems.append(problem)
            continue
        valid += 1
    if total == 0 and not whole_file:
        report(
            Problem(
                0,
                "file",
                None,
                "The file is empty: it has no rows to train on.",
                "Check that you uploaded the right file. A zip must contain PDF, Word, text, "
                "Markdown or HTML files.",
            )
        )
    return ValidationReport(total, valid, problems, problem_count, duplicates)


def _row_issues(row: Row, fmt: Format) -> list[_Issue]:
    if row.error is not None:
        return [_Issue(None, row.error.message, _error_fix(row.error.code))]
    data = row.data
    if fmt == "alpaca":
        data = _alpaca_view(data)
        issues = _text_field(data, "instruction") + _text_field(data, "output")
        if data.get("input") is not None and not isinstance(data["input"], str):
            issues.append(_wrong_type("input", data["input"], "text"))
        return issues
    if fmt == "text":
        return _text_field(data, "text")
    if fmt == "chat":
        return _turns_field(data, _CHAT)
    if fmt == "sharegpt":
        return _turns_field(data, _SHAREGPT)
    return _preference_issues(data)


def _text_field(data: dict[str, Any], field: str) -> list[_Issue]:
    fix = _FIELD_FIXES[field]
    if field not in data:
        return [_Issue(field, f"The '{field}' field is missing.", fix)]
    value = data[field]
    if value is None or (isinstance(value, str) and not value.strip()):
        return [_Issue(field, f"The '{field}' field is empty.", fix)]
    if not isinstance(value, str):
        return [_wrong_type(field, value, "text")]
    return []


def _wrong_type(field: str, value: Any, expected: str) -> _Issue:
    if expected == "text":
        fix = "Write it as text: in a JSON file, put the value in double quotes."
    else:
        fix = (
            "Write the conversation as a list, like "
            '[{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"}]'
            "; in a CSV file, put that JSON text in the cell."
        )
    return _Issue(field, f"The '{field}' field must be {expected}, but it is {_kind(value)}.", fix)


def _turns_field(data: dict[str, Any], style: _TurnStyle) -> list[_Issue]:
    if style.field not in data or data[style.field] is None:
        return [_Issue(style.field, f"The '{style.field}' field is missing.", _turns_fix(style))]
    return _turn_issues(data[style.field], style, style.field, needs_reply=True)


def _turns_fix(style: _TurnStyle) -> str:
    return (
        f'Add the conversation as a list, like [{{"{style.role_key}": "user", '
        f'"{style.content_key}": "Hello"}}, {{"{style.role_key}": "assistant", '
        f'"{style.content_key}": "Hi!"}}], or delete the row.'
    )


def _turn_issues(value: Any, style: _TurnStyle, field: str, *, needs_reply: bool) -> list[_Issue]:
    """Problems of a list of turns; `needs_reply` when it must end with the assistant."""
    if not isinstance(value, list):
        issue = _wrong_type(field, value, "a list of messages")
        return [issue._replace(fix=_turns_fix(style))]
    if not value:
        fix = "Add at least one user message and the assistant's reply, or delete the row."
        return [_Issue(field, f"The '{field}' list has no messages.", fix)]
    issues: list[_Issue] = []
    roles: list[str] = []
    allowed = ", ".join(sorted(set(style.roles), key=list(style.roles).index))
    for number, turn in enumerate(value, start=1):
        where = f"Message {number} of {len(value)}"
        if not isinstance(turn, dict):
            issues.append(
                _Issue(
                    field,
                    f"{where} is {_kind(turn)}, not an object with "
                    f"'{style.role_key}' and '{style.content_key}'.",
                    _turns_fix(style),
                )
            )
            continue
        role = turn.get(style.role_key)
        if role is None:
            issues.append(
                _Issue(
                    field,
                    f"{where} has no '{style.role_key}'.",
                    f"Say who speaks: set '{style.role_key}' to one of {allowed}.",
                )
            )
        elif not isinstance(role, str) or role not in style.roles:
            if isinstance(role, str) and role in _TOOL_ROLES:
                issues.append(
                    _Issue(
                        field,
                        f"{where} is a tool message ('{role}'); training on tool calls is "
                        "not supported yet.",
                        "Remove the tool messages from this conversation, or delete the row.",
                    )
                )
            else:
                issues.append(
                    _Issue(
                        field,
                        f"{where} has the {style.role_key} {json.dumps(role)}, which is not "
                        f"one of {allowed}.",
                        f"Use '{_first_role(style, 'user')}' for what a person says, "
                        f"'{_first_role(style, 'assistant')}' for the model's replies, or "
                        "'system' for instructions at the start.",
                    )
                )
        else:
            roles.append(style.roles[role])
        content = turn.get(style.content_key)
        if content is None:
            issues.append(
                _Issue(
                    field,
                    f"{where} has no '{style.content_key}'.",
                    f"Put the message's text in '{style.content_key}', or remove the message.",
                )
            )
        elif not isinstance(content, str):
            issues.append(
                _Issue(
                    field,
                    f"The '{style.content_key}' of message {number} must be text, but it is "
                    f"{_kind(content)}.",
                    "Write the message as plain text (images and other parts cannot be "
                    "trained on).",
                )
            )
        elif not content.strip():
            issues.append(
                _Issue(
                    field,
                    f"{where} is empty.",
                    "Write the message, or remove it from the conversation.",
                )
            )
    if issues or not needs_reply:
        return issues
    assistant = _first_role(style, "assistant")
    if "assistant" not in roles:
        return [
            _Issue(
                field,
                "The conversation has no assistant message, so there is nothing for the "
                "model to learn.",
                f"Add the reply you want the model to give, as a message whose "
                f"'{style.role_key}' is '{assistant}'.",
            )
        ]
    if roles[-1] != "assistant":
        # An error, not a warning: the trailing turn trains on nothing, and a conversation
        # that stops on the user's side is almost always a cut or mis-assembled export.
        last = value[-1][style.role_key]
        return [
            _Issue(
                field,
                f"The conversation ends with a '{last}' message; the last message must be "
                "the assistant's reply.",
                f"Add the assistant's reply at the end, or remove the final '{last}' message.",
            )
        ]
    return []


def _first_role(style: _TurnStyle, role: str) -> str:
    """How this format spells an OpenAI role: 'assistant' is 'gpt' in ShareGPT."""
    return next(written for written, mapped in style.roles.items() if mapped == role)


def _preference_issues(data: dict[str, Any]) -> list[_Issue]:
    issues: list[_Issue] = []
    for field in ("prompt", "chosen", "rejected"):
        value = data.get(field)
        if isinstance(value, list):
            issues += _turn_issues(value, _CHAT, field, needs_reply=field != "prompt")
        else:
            issues += _text_field(data, field)
    if not issues and data["chosen"] == data["rejected"]:
        issues.append(
            _Issue(
                "rejected",
                "The chosen and rejected answers are the same.",
                "Make 'rejected' a worse answer than 'chosen', or delete the row: two "
                "identical answers teach the model nothing.",
            )
        )
    return issues


def _content_key(data: dict[str, Any], fmt: Format) -> bytes:
    if fmt == "text":
        content: Any = to_text(data, fmt)
    elif fmt == "preference":
        content = preference_pair(data)
    else:
        content = to_messages(data, fmt)
    encoded = json.dumps(content, ensure_ascii=False, sort_keys=True).encode()
    return hashlib.blake2b(encoded, digest_size=16).digest()


def _kind(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


# Conversion ---------------------------------------------------------------------------------


def to_messages(data: dict[str, Any], fmt: Format) -> list[dict[str, str]]:
    """The OpenAI-style messages a valid row trains on; [] for `text` (see `to_text`).

    `data` must have passed `validate` as `fmt`. For `preference` this is the prompt and the
    chosen answer; `preference_pair` gives both sides.
    """
    if fmt == "alpaca":
        data = _alpaca_view(data)
        prompt = data["instruction"]
        if data.get("input"):
            prompt += "\n\n" + data["input"]
        return [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": data["output"]},
        ]
    if fmt == "chat":
        return _turns(data["messages"], _CHAT)
    if fmt == "sharegpt":
        return _turns(data["conversations"], _SHAREGPT)
    if fmt == "preference":
        return preference_pair(data)[0]
    return []


def preference_pair(data: dict[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The whole chosen and rejected conversations of a valid preference row."""
    prompt = _side(data["prompt"], "user")
    chosen, rejected = (_side(data[field], "assistant") for field in ("chosen", "rejected"))
    # UltraFeedback-style rows repeat the prompt at the start of each answer's list.
    return (
        chosen if chosen[: len(prompt)] == prompt else prompt + chosen,
        rejected if rejected[: len(prompt)] == prompt else prompt + rejected,
    )


def _side(value: str | list[dict[str, Any]], role: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return _turns(value, _CHAT)


def _turns(turns: list[dict[str, Any]], style: _TurnStyle) -> list[dict[str, str]]:
    return [
        {"role": style.roles[turn[style.role_key]], "content": turn[style.content_key]}
        for turn in turns
    ]


def to_text(data: dict[str, Any], fmt: Format) -> str:
    """What the model reads when there is no chat template: the text, or "role: content".

    Token statistics count exactly this for a tokenizer without a chat template.
    """
    if fmt == "text":
        text: str = data["text"]
        return text
    return _plain(to_messages(data, fmt))


def _plain(messages: list[dict[str, str]]) -> str:
    return "\n".join(f"{message['role']}: {message['content']}" for message in messages)


# Token statistics ---------------------------------------------------------------------------


def token_stats(
    rows: Iterable[Row], fmt: Format, tokenizer: Any, *, sequence_len: int
) -> TokenStats:
    """Token counts of the valid rows as the base model's tokenizer sees them.

    Conversations go through the tokenizer's chat template when it has one, else through
    `to_text`; a preference row counts as its longer side. Rows with problems are skipped
    (duplicates are counted: whether they are dropped is the caller's choice).
    """
    template = bool(getattr(tokenizer, "chat_template", None))
    lengths: list[int] = []
    skipped = 0
    # Each entry is one row: its texts (two for preference), tokenized in batches.
    pending: list[list[str]] = []
    # A chat template's output already holds the special tokens it wants (BOS and the
    # like); transformers itself tokenizes it without adding more.
    add_special = not (template and fmt != "text")

    def flush() -> None:
        texts = [text for group in pending for text in group]
        encoded = tokenizer(
            texts,
            add_special_tokens=add_special,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )["input_ids"]
        counts = iter(len(ids) for ids in encoded)
        lengths.extend(max(next(counts) for _ in group) for group in pending)
        pending.clear()

    for row in rows:
        if _row_issues(row, fmt):
            continue
        if fmt == "text":
            group = [to_text(row.data, fmt)]
        else:
            conversations = (
                list(preference_pair(row.data))
                if fmt == "preference"
                else [to_messages(row.data, fmt)]
            )
            try:
                group = [_render(tokenizer, messages, template) for messages in conversations]
            except Exception:  # any template error: that row cannot be counted
                skipped += 1
                continue
        pending.append(group)
        if len(pending) >= _TOKEN_BATCH:
            flush()
    if pending:
        flush()
    if not lengths:
        return TokenStats(0, 0, 0, 0.0, 0, 0, 0, 0, sequence_len, skipped)
    lengths.sort()
    total = sum(lengths)
    return TokenStats(
        rows=len(lengths),
        total_tokens=total,
        min=lengths[0],
        mean=total / len(lengths),
        p50=_percentile(lengths, 0.50),
        p95=_percentile(lengths, 0.95),
        max=lengths[-1],
        over_sequence_len=sum(length > sequence_len for length in lengths),
        sequence_len=sequence_len,
        skipped=skipped,
    )


def _render(tokenizer: Any, messages: list[dict[str, str]], template: bool) -> str:
    if not template:
        return _plain(messages)
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    if not isinstance(text, str):
        raise TypeError("the chat template did not render text")
    return text


def _percentile(ordered: list[int], share: float) -> int:
    """Nearest-rank percentile: a value that really occurs, as a person expects."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


# Train / eval split -------------------------------------------------------------------------


def split_counts(rows: int, eval_fraction: float) -> tuple[int, int]:
    """(train, eval) rows: at least one of each once there are two rows and a fraction."""
    if not 0 <= eval_fraction < 1:
        raise DatasetError(
            "invalid_eval_fraction",
            "The share of rows kept for evaluation must be at least 0 and less than 1.",
        )
    if rows < 2 or eval_fraction == 0:
        return rows, 0
    held_out = min(rows - 1, max(1, round(rows * eval_fraction)))
    return rows - held_out, held_out


def is_eval_row(index: int, eval_fraction: float, seed: str, *, rows: int | None = None) -> bool:
    """Whether valid row `index` (0-based) is held out for evaluation, the same every run.

    Without `rows`, each row is held out with probability `eval_fraction` by a hash of
    `seed` and `index`: stable even if rows are appended, but the count only approximates
    `split_counts`, and a tiny dataset can end up with no eval row at all. With `rows` (the
    number of valid rows), exactly `split_counts(rows, eval_fraction)[1]` rows are held out,
    evenly spread through the file from an offset the seed picks, so a file sorted by
    topic still gets eval rows from every part of it.
    """
    if rows is None:
        if not 0 <= eval_fraction < 1:
            split_counts(2, eval_fraction)  # raises the same error
        return _unit_hash(f"{seed}:{index}") < eval_fraction
    if not 0 <= index < rows:
        raise ValueError(f"row index {index} is outside 0..{rows - 1}")
    held_out = split_counts(rows, eval_fraction)[1]
    if held_out == 0:
        return False
    # Held-out positions are floor(j * rows / held_out) for j < held_out, shifted by the
    # offset: `position` is one of them when the first j that reaches it lands on it.
    position = (index - int(_unit_hash(seed) * rows)) % rows
    j = -(-position * held_out // rows)
    return j < held_out and j * rows // held_out == position


def _unit_hash(text: str) -> float:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
