import io
import json
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import docx
import pypdf
import pypdfium2 as pdfium
import pytest
from docx.document import Document as DocxDocument
from docx.enum.text import WD_BREAK
from docx.oxml import OxmlElement

from services.common.documents import (
    DOCX,
    HTML,
    MARKDOWN,
    PDF,
    SUPPORTED_EXTENSIONS,
    TEXT,
    ExtractedDocument,
    ExtractionError,
    extract,
)
from services.common.errors import InvalidInput

FINANCEBENCH = Path(__file__).parents[3].parent / "shared/data/financebench"
PDFS = FINANCEBENCH / "pdfs"
needs_financebench = pytest.mark.skipif(
    not (PDFS / "ADOBE_2022_10K.pdf").is_file(), reason="FinanceBench data not present"
)
# Documents whose evidence is checked page by page: the encrypted 10-K and the short ones.
EVIDENCE_DOCS = (
    "ADOBE_2022_10K",
    "AMCOR_2023Q4_EARNINGS",
    "JOHNSON_JOHNSON_2022Q4_EARNINGS",
    "MGMRESORTS_2022Q4_EARNINGS",
    "PEPSICO_2023_8K_dated-2023-05-05",
    "ULTABEAUTY_2023Q4_EARNINGS",
)


@cache
def filing(doc_name: str) -> ExtractedDocument:
    return extract(f"{doc_name}.pdf", (PDFS / f"{doc_name}.pdf").read_bytes())


def evidence() -> list[tuple[str, str, int, str]]:
    path = FINANCEBENCH / "questions.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [
        (row["id"], item["doc_name"], item["page_index"], item["text"])
        for row in rows
        for item in row["evidence"]
        if item["doc_name"] in EVIDENCE_DOCS
    ]


def squashed(text: str) -> str:
    # PDF text layers differ in spacing, quotes and bullets; letters and digits do not.
    return re.sub(r"[^a-z0-9]", "", text.lower())


def refusal(name: str, data: bytes, **kwargs: int) -> ExtractionError:
    with pytest.raises(ExtractionError) as caught:
        extract(name, data, **kwargs)
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.http_status == 422
    assert caught.value.to_body()["error"]["message"] == caught.value.reason
    return caught.value


def one_page_of(doc_name: str, *, user_password: str, owner_password: str) -> bytes:
    reader = pypdf.PdfReader(PDFS / f"{doc_name}.pdf")
    writer = pypdf.PdfWriter()
    writer.add_page(reader.pages[0])
    writer.encrypt(user_password=user_password, owner_password=owner_password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def docx_bytes(document: DocxDocument) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# PDF


@needs_financebench
def test_the_aes_encrypted_adobe_10k_opens_with_its_empty_password() -> None:
    document = filing("ADOBE_2022_10K")
    assert document.media_type == PDF
    assert document.title == "ADBE 10-K FY22"
    reader = pypdf.PdfReader(PDFS / "ADOBE_2022_10K.pdf")
    assert reader.is_encrypted
    # Page i here is reader.pages[i] there: FinanceBench's page_index counts the same way.
    assert [page.index for page in document.pages] == list(range(len(reader.pages)))
    assert "CONSOLIDATED STATEMENTS OF INCOME" in document.pages[53].text


@needs_financebench
@pytest.mark.parametrize(("question", "doc_name", "page_index", "text"), evidence())
def test_financebench_evidence_is_on_its_stated_page(
    question: str, doc_name: str, page_index: int, text: str
) -> None:
    needle = squashed(text)[:150]
    found_on = [page.index for page in filing(doc_name).pages if needle in squashed(page.text)]
    assert found_on == [page_index], question


@needs_financebench
def test_a_pdf_that_needs_a_password_is_refused_and_an_owner_only_one_is_read() -> None:
    locked = one_page_of(
        "PEPSICO_2023_8K_dated-2023-05-05", user_password="secret", owner_password="o"
    )
    error = refusal("locked.pdf", locked)
    assert error.code == "pdf_password_required"
    assert "locked.pdf" in error.reason
    # Restricted (printing/copying) but openable, like most encrypted filings.
    restricted = one_page_of(
        "PEPSICO_2023_8K_dated-2023-05-05", user_password="", owner_password="o"
    )
    assert "PEPSICO" in extract("restricted.pdf", restricted).pages[0].text.upper()


@needs_financebench
def test_damaged_or_fake_pdfs_are_corrupt() -> None:
    data = (PDFS / "AMCOR_2022_8K_dated-2022-07-01.pdf").read_bytes()
    assert refusal("cut.pdf", data[: len(data) // 2]).code == "pdf_corrupt"
    assert refusal("fake.pdf", b"<html>not a pdf</html>").code == "pdf_corrupt"
    assert refusal("header-only.pdf", b"%PDF-1.7\n%%EOF").code == "pdf_corrupt"
    # The content decides, not the name: a PDF without an extension is still a PDF.
    assert extract("download", data).media_type == PDF


@needs_financebench
def test_pages_without_text_stay_empty_and_a_pdf_without_any_text_is_refused() -> None:
    writer = pypdf.PdfWriter()
    writer.add_page(pypdf.PdfReader(PDFS / "PEPSICO_2023_8K_dated-2023-05-05.pdf").pages[0])
    writer.add_blank_page()
    buffer = io.BytesIO()
    writer.write(buffer)
    pages = extract("mixed.pdf", buffer.getvalue()).pages
    assert [page.index for page in pages] == [0, 1]
    assert pages[0].text
    assert pages[1].text == ""

    scan = pdfium.PdfDocument.new()
    scan.new_page(612, 792)
    buffer = io.BytesIO()
    scan.save(buffer)
    error = refusal("scan.pdf", buffer.getvalue())
    assert error.code == "no_text"
    assert "OCR" in error.reason


@needs_financebench
def test_pdfs_extracted_from_several_threads_at_once_match() -> None:
    names = ["PEPSICO_2023_8K_dated-2023-05-05", "ULTABEAUTY_2023Q4_EARNINGS"] * 3
    blobs = {name: (PDFS / f"{name}.pdf").read_bytes() for name in names}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda name: extract(f"{name}.pdf", blobs[name]), names))
    for name, result in zip(names, results, strict=True):
        assert result.pages == filing(name).pages


# DOCX


def test_docx_pages_follow_page_breaks_and_include_tables() -> None:
    document = docx.Document()
    document.add_heading("Annual Report 2023", level=1)
    document.add_paragraph("Revenue grew 12% to $4.2 billion.")
    table = document.add_table(rows=2, cols=2)
    for (row, col), text in {(0, 0): "Segment", (0, 1): "Revenue", (1, 0): "Cloud"}.items():
        table.cell(row, col).text = text
    table.cell(1, 1).text = "$3.1B"
    paragraph = document.add_paragraph("Last words on page one.")
    paragraph.add_run().add_break(WD_BREAK.PAGE)
    paragraph.add_run("First words on page two.")
    document.add_paragraph("Outlook:    stable.")

    result = extract("Report.DOCX", docx_bytes(document))
    assert result.media_type == DOCX
    assert result.title == "Annual Report 2023"
    assert [page.index for page in result.pages] == [0, 1]
    assert result.pages[0].text == (
        "Annual Report 2023\nRevenue grew 12% to $4.2 billion.\nSegment Revenue\nCloud $3.1B\n"
        "Last words on page one."
    )
    assert result.pages[1].text == "First words on page two.\nOutlook: stable."


def test_a_docx_without_breaks_is_one_page_and_its_core_title_wins() -> None:
    document = docx.Document()
    document.core_properties.title = "Board minutes"
    document.add_heading("Agenda", level=2)
    document.add_paragraph("Item one.")
    result = extract("minutes.docx", docx_bytes(document))
    assert result.title == "Board minutes"
    assert [(page.index, page.text) for page in result.pages] == [(0, "Agenda\nItem one.")]


def test_word_s_own_page_layout_is_used_when_recorded() -> None:
    # Word saves a marker where each page began; a hard break also gets one, and must not
    # count twice.
    document = docx.Document()
    document.add_paragraph("Page one.")
    flowing = document.add_paragraph("Page two, ")
    flowing.add_run()._r.append(OxmlElement("w:lastRenderedPageBreak"))
    flowing.add_run("which began mid-paragraph.")
    hard = document.add_paragraph()
    hard.add_run().add_break(WD_BREAK.PAGE)
    after_break = hard.add_run("Page three.")
    after_break._r.insert(0, OxmlElement("w:lastRenderedPageBreak"))
    pages = extract("laid-out.docx", docx_bytes(document)).pages
    assert [page.text for page in pages] == [
        "Page one.\nPage two,",
        "which began mid-paragraph.",
        "Page three.",
    ]


def test_damaged_or_unsafe_docx_files_are_corrupt() -> None:
    assert refusal("notes.docx", b"just text").code == "docx_corrupt"
    protected = refusal("locked.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512))
    assert (protected.code, "password" in protected.reason) == ("docx_corrupt", True)
    other_zip = io.BytesIO()
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "not a word document")
    assert refusal("zip.docx", other_zip.getvalue()).code == "docx_corrupt"
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", bytes(50 * 1024 * 1024))
    error = refusal("bomb.docx", bomb.getvalue())
    assert (error.code, "suspiciously" in error.reason) == ("docx_corrupt", True)


# Text, Markdown, HTML


def test_text_pages_split_on_form_feeds_and_spaces_collapse() -> None:
    data = b"Page  one\tline\r\n\r\n\r\n\r\nstill one\fPage\xc2\xa0two\f"
    result = extract("notes.txt", data)
    assert result.media_type == TEXT
    assert result.title is None
    assert [(page.index, page.text) for page in result.pages] == [
        (0, "Page one line\n\nstill one"),
        (1, "Page two"),
    ]


def test_text_that_is_not_utf8_is_still_read() -> None:
    legacy = "café “quoted”".encode("cp1252")
    assert extract("legacy.txt", legacy).pages[0].text == "café “quoted”"
    assert [p.text for p in extract("u16.txt", "héllo\fworld".encode("utf-16")).pages] == [
        "héllo",
        "world",
    ]
    assert extract("bom.txt", b"\xef\xbb\xbfbom").pages[0].text == "bom"
    assert refusal("program.txt", b"\x7fELF\x02\x01\x01\x00\x00").code == "unsupported_type"


def test_markdown_title_is_the_first_heading_outside_code() -> None:
    data = b"```sh\n# not a title\n```\nIntro\n\n## Install   guide ##\nRun it.\n"
    result = extract("README.md", data)
    assert (result.media_type, result.title) == (MARKDOWN, "Install guide")
    assert "# not a title" in result.pages[0].text
    assert extract("doc.markdown", b"Setext title\n===\nbody").title == "Setext title"


def test_html_keeps_the_words_and_drops_scripts_styles_and_navigation() -> None:
    data = b"""<!doctype html><html><head><title> Q3   Results </title>
    <style>p { color: red }</style><script>var secret = "token";</script></head>
    <body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
    <h1>Third quarter</h1><p>Sales rose
       <b>8%</b> to $1.2bn.</p><!-- hidden comment -->
    <table><tr><td>EMEA</td><td>1.1</td></tr><tr><td>APAC</td><td>0.9</td></tr></table>
    <script>document.write("later")</script><noscript>enable javascript</noscript>
    <p>Line<br>break</p></body></html>"""
    result = extract("q3.html", data)
    assert (result.media_type, result.title) == (HTML, "Q3 Results")
    text = result.pages[0].text
    assert (
        text == "Third quarter\n\nSales rose 8% to $1.2bn.\n\nEMEA 1.1\n\nAPAC 0.9\n\nLine\nbreak"
    )
    for dropped in ("secret", "color", "Home", "later", "javascript", "comment"):
        assert dropped not in text


def test_html_title_falls_back_to_the_first_heading_and_honours_its_charset() -> None:
    data = (
        '<html><head><meta charset="windows-1252"></head><body><h1>Résumé</h1><p>ok</p></body>'
        "</html>"
    ).encode("cp1252")
    result = extract("cv.htm", data)
    assert result.title == "Résumé"
    assert result.pages[0].text.startswith("Résumé")


# Refusals common to every type


@pytest.mark.parametrize("name", ["setup.exe", "archive.zip", "sheet.xlsx", "README"])
def test_unsupported_types_name_the_supported_ones(name: str) -> None:
    error = refusal(name, b"MZ\x90\x00 whatever")
    assert error.code == "unsupported_type"
    assert name in error.reason
    assert all(extension in error.reason for extension in SUPPORTED_EXTENSIONS)


def test_oversized_and_empty_files_are_refused() -> None:
    error = refusal("big.txt", b"x" * 2048, max_bytes=1024)
    assert error.code == "file_too_large"
    assert refusal("blank.md", b" \n\t\f \n").code == "no_text"
    assert refusal("blank.html", b"<html><script>x()</script></html>").code == "no_text"
