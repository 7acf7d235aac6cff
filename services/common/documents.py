"""Text per file type, page by page: for the knowledge-base indexer, and for the trainer's
document datasets (continued pre-training).

Pages matter: answers cite them, and retrieval is scored by page (FinanceBench's
`page_index` is the 0-based PDF page as pypdf counts it, which is how PDFium counts too).
Text is normalised only lightly (runs of spaces collapsed, line breaks kept) because
chunking downstream counts tokens, not characters.

Every refusal is an `ExtractionError` with a stable `code` and a sentence naming the file,
so the indexer can record why a document is not searchable and the UI can show it.
"""

from __future__ import annotations

import codecs
import io
import re
import threading
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

import docx
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from bs4 import BeautifulSoup
from bs4.element import NavigableString, Tag
from docx.document import Document as DocxDocument
from docx.opc.exceptions import PackageNotFoundError
from lxml import etree

from services.common.archives import ArchiveLimits, check_zip_directory
from services.common.errors import InvalidInput
from services.common.logging import get_logger

log = get_logger(__name__)

MiB = 1024 * 1024
DEFAULT_MAX_BYTES = 100 * MiB

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"

_MEDIA_TYPES = {
    ".pdf": PDF,
    ".docx": DOCX,
    ".txt": TEXT,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".html": HTML,
    ".htm": HTML,
}
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(_MEDIA_TYPES)

# PDFium is not thread-safe (pypdfium2's docs); a worker that runs tasks in threads must
# not enter it twice at once. Processes each have their own copy and never wait here.
_PDFIUM_LOCK = threading.Lock()
# A .docx is a zip: bound what python-docx may inflate before it opens the package.
_DOCX_LIMITS = ArchiveLimits(max_files=5_000)

# Word saves password-protected documents (and old .doc files) as OLE compound files.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
# Word stores a text box twice, as a drawing and as a VML fallback; read only the first.
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_FALSE = {"0", "false", "off"}

_DROPPED_HTML = ("script", "style", "nav", "noscript", "template", "iframe", "svg", "head")
_BLOCK_HTML = (
    "address", "article", "aside", "blockquote", "caption", "dd", "details", "dialog", "div",
    "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hr", "li", "main", "ol", "p", "pre", "section", "summary", "table",
    "tr", "ul",
)  # fmt: skip

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f\ufffe\uffff]")
_HSPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_WHITESPACE = re.compile(r"\s+")
_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.+?)(?:\s+#+)?\s*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


class ExtractionError(InvalidInput):
    """A file that cannot be indexed: `code` for programs, `reason` for the person."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code, reason)
        self.reason = reason


@dataclass(frozen=True)
class PageText:
    index: int
    text: str


@dataclass(frozen=True)
class ExtractedDocument:
    name: str
    media_type: str
    pages: list[PageText]
    title: str | None = None


def extract(name: str, data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ExtractedDocument:
    """Text of one file, one `PageText` per page (0-based, as the file counts its pages).

    The type comes from the extension, checked against the file's first bytes: a PDF is
    read as one whatever it is called, and a .pdf or .docx that is not one is corrupt.
    Zip archives are not handled here: the caller expands them first with
    `services.common.archives.iter_zip_members` and extracts each member.
    """
    if len(data) > max_bytes:
        raise ExtractionError(
            "file_too_large",
            f"'{name}' is {_mib(len(data))}; files up to {_mib(max_bytes)} can be indexed.",
        )
    media_type = _media_type(name, data)
    readers: dict[str, Callable[[str, bytes], tuple[list[str], str | None]]] = {
        PDF: _read_pdf,
        DOCX: _read_docx,
        HTML: _read_html,
        MARKDOWN: _read_markdown,
        TEXT: _read_text,
    }
    raw_pages, title = readers[media_type](name, data)
    pages = [PageText(index, _normalise(text)) for index, text in enumerate(raw_pages)]
    if not any(page.text for page in pages):
        if media_type == PDF:
            reason = (
                f"'{name}' has no text layer; scanned PDFs need OCR, which is not supported yet."
            )
        else:
            reason = f"'{name}' contains no text to index."
        raise ExtractionError("no_text", reason)
    return ExtractedDocument(name=name, media_type=media_type, pages=pages, title=title)


def _media_type(name: str, data: bytes) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    if data.startswith(b"%PDF-"):
        return PDF
    media_type = _MEDIA_TYPES.get(suffix)
    if media_type is None:
        supported = ", ".join(SUPPORTED_EXTENSIONS)
        raise ExtractionError(
            "unsupported_type",
            f"'{name}' is not a supported type; supported files are {supported}.",
        )
    # Writers may put a little junk before the header; readers accept it in the first KiB.
    if media_type == PDF and b"%PDF-" not in data[:1024]:
        raise ExtractionError("pdf_corrupt", f"'{name}' is not a PDF file, or it is damaged.")
    if media_type == DOCX and data.startswith(_OLE_MAGIC):
        raise ExtractionError(
            "docx_corrupt",
            f"'{name}' is password-protected or in the old .doc format; save it as a .docx "
            "without a password.",
        )
    if media_type == DOCX and not data.startswith(b"PK\x03\x04"):
        raise ExtractionError("docx_corrupt", f"'{name}' is not a Word document, or it is damaged.")
    return media_type


def _read_pdf(name: str, data: bytes) -> tuple[list[str], str | None]:
    with _PDFIUM_LOCK:
        try:
            # No password given: PDFium tries the empty one, which opens the many filings
            # that are encrypted only to restrict printing or copying.
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if exc.err_code == pdfium_c.FPDF_ERR_PASSWORD:
                raise ExtractionError(
                    "pdf_password_required",
                    f"'{name}' is protected by a password; upload a copy without one.",
                ) from exc
            if exc.err_code == pdfium_c.FPDF_ERR_SECURITY:
                raise ExtractionError(
                    "pdf_password_required",
                    f"'{name}' is protected by a certificate or an unsupported encryption "
                    "scheme; upload an unprotected copy.",
                ) from exc
            raise ExtractionError(
                "pdf_corrupt", f"'{name}' is damaged and could not be read as a PDF."
            ) from exc
        try:
            title = _title(document.get_metadata_value("Title"))
            pages = [_pdf_page_text(document, index, name) for index in range(len(document))]
        finally:
            document.close()
    return pages, title


def _pdf_page_text(document: pdfium.PdfDocument, index: int, name: str) -> str:
    # One broken or image-only page yields no text; the rest of the document still counts.
    try:
        page = document[index]
        try:
            textpage = page.get_textpage()
            try:
                return str(textpage.get_text_range())
            finally:
                textpage.close()
        finally:
            page.close()
    except pdfium.PdfiumError:
        log.warning("pdf page unreadable", document=name, page_index=index)
        return ""


def _read_docx(name: str, data: bytes) -> tuple[list[str], str | None]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            check_zip_directory(package, limits=_DOCX_LIMITS)
        document = docx.Document(io.BytesIO(data))
    except InvalidInput as exc:
        raise ExtractionError(
            "docx_corrupt", f"'{name}' could not be opened safely: {exc.message}"
        ) from exc
    except (
        PackageNotFoundError,
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        KeyError,
        ValueError,
        NotImplementedError,
        RuntimeError,
        etree.LxmlError,
    ) as exc:
        # ValueError: another Office type (an .xlsx renamed .docx); RuntimeError: an encrypted
        # part; the rest: a damaged zip or XML inside.
        raise ExtractionError(
            "docx_corrupt", f"'{name}' is not a Word document, or it is damaged."
        ) from exc
    body = document.element.body
    # Word records where it last laid out each page; when present those breaks are the real
    # pages. A generated document has none, and only its explicit breaks mark pages.
    rendered = body.find(f".//{_W}lastRenderedPageBreak") is not None
    return _docx_pages(body, rendered=rendered), _docx_title(document)


def _docx_pages(body: etree._Element, *, rendered: bool) -> list[str]:
    pages: list[list[str]] = [[]]
    cell_depth = 0
    section_ends_page = False
    walker = etree.iterwalk(body, events=("start", "end"))
    for event, element in walker:
        tag = element.tag
        if event == "start":
            if tag == _MC_FALLBACK:
                walker.skip_subtree()
            elif tag == f"{_W}t":
                pages[-1].append(element.text or "")
            elif tag == f"{_W}tab":
                pages[-1].append("\t")
            elif tag in (f"{_W}br", f"{_W}cr"):
                if element.get(f"{_W}type") == "page" and not rendered:
                    pages.append([])
                else:
                    pages[-1].append("\n")
            elif tag == f"{_W}lastRenderedPageBreak" and rendered:
                pages.append([])
            elif tag == f"{_W}pageBreakBefore" and not rendered:
                if element.get(f"{_W}val", "1") not in _FALSE and "".join(pages[-1]).strip():
                    pages.append([])
            elif tag == f"{_W}sectPr" and element.getparent().tag == f"{_W}pPr":
                kind = element.find(f"{_W}type")
                continuous = kind is not None and kind.get(f"{_W}val") == "continuous"
                section_ends_page = not rendered and not continuous
            elif tag == f"{_W}tc":
                cell_depth += 1
        elif tag == f"{_W}p":
            # Paragraphs inside a table cell stay on the row's line.
            pages[-1].append(" " if cell_depth else "\n")
            if section_ends_page:
                pages.append([])
                section_ends_page = False
        elif tag == f"{_W}tc":
            cell_depth -= 1
            pages[-1].append("\t")
        elif tag == f"{_W}tr":
            pages[-1].append("\n")
    return ["".join(pieces) for pieces in pages]


def _docx_title(document: DocxDocument) -> str | None:
    title = _title(document.core_properties.title)
    if title:
        return title
    for paragraph in document.paragraphs:
        style = paragraph.style.name if paragraph.style is not None else ""
        if style and (style == "Title" or style.startswith("Heading")):
            heading = _title(paragraph.text)
            if heading:
                return heading
    return None


def _read_html(name: str, data: bytes) -> tuple[list[str], str | None]:
    # Bytes, not str: BeautifulSoup honours the page's own <meta charset>.
    soup = BeautifulSoup(data, "lxml")
    title = _title(soup.title.get_text()) if soup.title is not None else None
    for tag in soup.find_all(_DROPPED_HTML):
        tag.decompose()
    if title is None:
        heading = soup.find("h1")
        title = _title(heading.get_text(" ")) if heading is not None else None
    # Source line breaks mean nothing in HTML outside <pre>; blocks are what break lines.
    for string in list(soup.find_all(string=True)):
        if type(string) is NavigableString and string.find_parent("pre") is None:
            string.replace_with(_HSPACE.sub(" ", string.replace("\n", " ")))
    for tag in soup.find_all(_BLOCK_HTML):
        tag.insert_before("\n")
        tag.append("\n")
    for tag in soup.find_all("br"):
        tag.replace_with("\n")
    for tag in soup.find_all(("td", "th")):
        if isinstance(tag, Tag):
            tag.append("\t")
    return [soup.get_text()], title


def _read_markdown(name: str, data: bytes) -> tuple[list[str], str | None]:
    pages, _ = _read_text(name, data)
    return pages, _markdown_title("\n".join(pages))


def _read_text(name: str, data: bytes) -> tuple[list[str], str | None]:
    text = _decode(name, data)
    # A form feed is the plain-text page break (printers, `pr`, many converters).
    pages = text.split("\f")
    if len(pages) > 1 and not pages[-1].strip():
        pages.pop()
    return pages, None


def _decode(name: str, data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    if b"\x00" in data[:8192]:
        raise ExtractionError("unsupported_type", f"'{name}' looks like a binary file, not text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Not UTF-8: most likely a legacy Windows file; never fail over a stray byte.
        return data.decode("cp1252", errors="replace")


def _markdown_title(text: str) -> str | None:
    in_fence = False
    previous = ""
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            if match := _ATX_HEADING.match(line):
                return _title(match.group(1))
            if previous.strip() and _SETEXT_UNDERLINE.match(line) and line.strip()[0] == "=":
                return _title(previous)
        previous = line
    return None


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = (_HSPACE.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _title(value: str | None) -> str | None:
    # Filings often carry an accession number ("0001018724-18-000005") as their title.
    title = _WHITESPACE.sub(" ", value or "").strip()
    return title if any(char.isalpha() for char in title) else None


def _mib(size: int) -> str:
    return f"{size / MiB:,.1f} MiB"
