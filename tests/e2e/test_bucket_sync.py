"""A knowledge base that reads the user's own bucket, in the browser: register, attach the
bucket (a misspelt name first, refused in words), then put a FinanceBench filing and a text
file into the bucket with boto3 while the page is open and watch them appear and get indexed
by themselves; delete one object in the bucket and watch it go; the page at phone width.

The user's bucket is a moto server, not the platform's embedded SeaweedFS: the platform
refuses to attach its own object store (`endpoint_not_allowed`: with the user's key it
could read other tenants' prefixes). moto sends no bucket events, so what is seen here is
the polling of attached buckets (every 5 s in this package, see conftest.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.conftest import WebStack, open_page
from tests.factories import random_email
from tests.servers.moto import run_moto
from tests.servers.platform import REPO

PASSWORD = "correct horse battery staple"
BUCKET = "acme-filings"
PREFIX = "filings/"
USER_KEYS = {"aws_access_key_id": "AKIAE2EUSEROWNKEY", "aws_secret_access_key": "e2e-own-secret"}
FILINGS = REPO.parent / "shared" / "data" / "financebench" / "pdfs"
FILING = FILINGS / "PEPSICO_2023_8K_dated-2023-05-05.pdf"  # 102 KB, 8-K
NOTE = "notes.txt"
NOTE_TEXT = "Board notes.\n\nThe filings bucket is read by Forgeline; nothing is written back.\n"
INDEX_TIMEOUT_MS = 300_000  # a PDF on a busy CPU: extract, split, embed


@pytest.fixture
def user_bucket(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """The user's own S3: its endpoint and a boto3 client with the user's keys."""
    with run_moto(tmp_path / "user-s3") as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **USER_KEYS)
        s3.create_bucket(Bucket=BUCKET)
        yield endpoint, s3


def document_row(page: Page, name: str) -> Locator:
    return page.get_by_role("row", name=re.compile(re.escape(name)))


def test_documents_follow_the_users_own_bucket(
    web_stack: WebStack, browser: Browser, artifacts: Path, user_bucket: tuple[str, Any]
) -> None:
    assert FILING.is_file(), f"FinanceBench filing missing: {FILING}"
    endpoint, s3 = user_bucket
    url = web_stack.url
    context, page, console = open_page(browser)

    # Register.
    page.goto(url)
    page.get_by_role("tab", name="Create account").click()
    page.get_by_label("Email").fill(random_email("e2e-bucket"))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()

    # Attach the bucket; the first try misspells its name, and the check says so in words.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Knowledge bases").click()
    page.get_by_label("Name", exact=True).fill("Own filings")
    page.get_by_role("radio", name=re.compile("In my own bucket")).check()
    page.get_by_label("Bucket name", exact=True).fill("acme-filingz")
    page.get_by_label("Folder (optional)", exact=True).fill(PREFIX)
    page.get_by_label("Endpoint URL (optional)", exact=True).fill(endpoint)
    page.get_by_label("Access key ID", exact=True).fill(USER_KEYS["aws_access_key_id"])
    page.get_by_label("Secret access key", exact=True).fill(USER_KEYS["aws_secret_access_key"])
    page.screenshot(path=artifacts / "01-own-bucket-form.png", full_page=True)
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("alert")).to_have_text(
        "There is no bucket named 'acme-filingz' at that endpoint."
    )
    page.screenshot(path=artifacts / "02-refused-in-words.png", full_page=True)
    page.get_by_label("Bucket name", exact=True).fill(BUCKET)
    page.get_by_role("button", name="Create").click()

    # Its page says where to put files, and offers no upload or delete.
    expect(page.get_by_role("heading", name="Own filings")).to_be_visible()
    expect(page.get_by_test_id("kb-location")).to_have_text(f"Reads s3://{BUCKET}/{PREFIX}")
    expect(page.get_by_text(f"No documents in s3://{BUCKET}/{PREFIX} yet.")).to_be_visible()
    expect(page.get_by_label("Choose files")).to_have_count(0)
    assert USER_KEYS["aws_secret_access_key"] not in page.content()
    page.screenshot(path=artifacts / "03-attached-empty.png", full_page=True)

    # Files put straight into the bucket appear by themselves and get indexed.
    s3.put_object(
        Bucket=BUCKET,
        Key=PREFIX + FILING.name,
        Body=FILING.read_bytes(),
        ContentType="application/pdf",
    )
    s3.put_object(Bucket=BUCKET, Key=PREFIX + NOTE, Body=NOTE_TEXT.encode())
    s3.put_object(Bucket=BUCKET, Key="elsewhere/ignored.txt", Body=b"Not under the folder.")
    filing, note = document_row(page, FILING.name), document_row(page, NOTE)
    expect(filing).to_be_visible(timeout=60_000)
    expect(note).to_be_visible(timeout=60_000)
    page.screenshot(path=artifacts / "04-appeared.png", full_page=True)
    expect(note.get_by_text("indexed", exact=True)).to_be_visible(timeout=INDEX_TIMEOUT_MS)
    expect(filing.get_by_text("indexed", exact=True)).to_be_visible(timeout=INDEX_TIMEOUT_MS)
    expect(filing).to_contain_text("page")  # its page count, read from the PDF
    expect(filing.get_by_role("button")).to_have_count(0)
    expect(page.get_by_role("row", name=re.compile("ignored.txt"))).to_have_count(0)
    page.screenshot(path=artifacts / "05-indexed.png", full_page=True)

    # An object deleted in the bucket disappears from the page.
    s3.delete_object(Bucket=BUCKET, Key=PREFIX + NOTE)
    expect(note).to_have_count(0, timeout=60_000)
    expect(filing).to_be_visible()
    page.screenshot(path=artifacts / "06-deleted-in-bucket.png", full_page=True)

    # Phone width: nothing wider than the screen (the bucket path wraps).
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_test_id("kb-location")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=artifacts / "07-phone.png", full_page=True)
    page.get_by_role("button", name="Menu").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Knowledge bases").click()
    page.get_by_role("radio", name=re.compile("In my own bucket")).check()
    expect(page.get_by_label("Secret access key", exact=True)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=artifacts / "08-phone-form.png", full_page=True)

    context.close()
    # The misspelt bucket's 422 is the one failed request the browser logs by itself.
    assert [e for e in console.errors if "status of 422" not in e] == []
