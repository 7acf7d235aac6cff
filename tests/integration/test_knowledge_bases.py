"""Knowledge bases end to end: upload through the API or straight into the bucket, and the
index follows; answers come from the right document and page; tenants stay apart."""

from __future__ import annotations

import io
import signal

import chromadb
import httpx
import psutil
import pytest
import sqlalchemy
from pypdf import PdfWriter

from services.common.vectors import KB_ID, collection_name
from tests.factories import make_user
from tests.integration.conftest import Stack
from tests.integration.kb_helpers import (
    chunk_count,
    create_kb,
    documents,
    platform_s3,
    retrieve,
    upload,
    wait_for_documents,
)
from tests.servers.platform import REPO

FILINGS = REPO.parent / "shared" / "data" / "financebench" / "pdfs"

VOLCANO = (
    "Field notes, chapter one.\n\nThe Karvelan volcano last erupted in 1843 and its crater "
    "lake is called Lake Oru. Its slopes grow saffron."
)
RIVER = "Field notes, chapter two.\n\nThe Trelis river floods every April and carries tin ore."
VOLCANO_V2 = (
    "Field notes, revised.\n\nThe Karvelan volcano has been dormant since 1843; the crater "
    "lake was renamed Lake Siel in 1990."
)


def _indexed(*names: str):  # type: ignore[no-untyped-def]
    return lambda docs: all(docs.get(n, {}).get("state") == "indexed" for n in names)


def test_upload_then_retrieve_with_page_citations(stack: Stack, client: httpx.Client) -> None:
    user = make_user(client)
    kb = create_kb(client, user)
    assert kb["embedding_model"] == "all-MiniLM-L6-v2"
    result = upload(
        client, user, kb["id"], {"volcano.txt": VOLCANO.encode(), "river.md": RIVER.encode()}
    )
    assert result["stored"] == 2
    assert {f["state"] for f in result["data"]} <= {"pending", "indexed"}

    docs = wait_for_documents(client, user, kb["id"], _indexed("volcano.txt", "river.md"))
    assert docs["volcano.txt"]["chunks"] >= 1

    hits = retrieve(client, user, kb["id"], "What is the name of the crater lake?")
    assert hits[0]["document"] == "volcano.txt"
    assert "Lake Oru" in hits[0]["snippet"]
    assert hits[0]["pages"] == "p. 1"
    hits = retrieve(client, user, kb["id"], "Which river carries tin?")
    assert hits[0]["document"] == "river.md"


def test_the_bucket_is_the_truth(stack: Stack, client: httpx.Client) -> None:
    """Put, overwrite and delete straight in the bucket: the index follows by itself."""
    user = make_user(client)
    kb = create_kb(client, user)
    s3 = platform_s3(stack.platform)
    key = kb["prefix"] + "direct.txt"
    s3.put_object(Bucket=kb["bucket"], Key=key, Body=VOLCANO.encode())
    first = wait_for_documents(client, user, kb["id"], _indexed("direct.txt"))["direct.txt"]
    assert "Lake Oru" in retrieve(client, user, kb["id"], "crater lake name")[0]["snippet"]

    s3.put_object(Bucket=kb["bucket"], Key=key, Body=VOLCANO_V2.encode())
    second = wait_for_documents(
        client,
        user,
        kb["id"],
        lambda d: (
            d.get("direct.txt", {}).get("state") == "indexed"
            and d["direct.txt"]["etag"] != first["etag"]
        ),
    )["direct.txt"]
    snippets = " ".join(h["snippet"] for h in retrieve(client, user, kb["id"], "crater lake name"))
    assert "Lake Siel" in snippets and "Lake Oru" not in snippets
    assert chunk_count(stack.platform, kb["id"], key) == second["chunks"]

    s3.delete_object(Bucket=kb["bucket"], Key=key)
    wait_for_documents(client, user, kb["id"], lambda d: "direct.txt" not in d)
    assert chunk_count(stack.platform, kb["id"], key) == 0
    assert retrieve(client, user, kb["id"], "crater lake name") == []


def test_bad_documents_fail_with_a_reason(stack: Stack, client: httpx.Client) -> None:
    user = make_user(client)
    kb = create_kb(client, user)
    locked = PdfWriter()
    locked.add_blank_page(width=612, height=792)
    locked.encrypt("a secret")  # a user password: no viewer opens it without asking
    buffer = io.BytesIO()
    locked.write(buffer)
    upload(
        client,
        user,
        kb["id"],
        {
            "locked.pdf": buffer.getvalue(),
            "broken.pdf": b"%PDF-1.7\n this is not really a pdf",
            "tool.exe": b"MZ\x90\x00" + bytes(100),
        },
    )
    docs = wait_for_documents(
        client,
        user,
        kb["id"],
        lambda d: len(d) == 3 and all(x["state"] == "failed" for x in d.values()),
    )
    assert docs["locked.pdf"]["failure"]["code"] == "pdf_password_required"
    assert docs["broken.pdf"]["failure"]["code"] == "pdf_corrupt"
    assert docs["tool.exe"]["failure"]["code"] == "unsupported_type"
    assert all(d["failure"]["reason"] for d in docs.values())


def test_zip_upload_and_unsafe_zip(stack: Stack, client: httpx.Client) -> None:
    import zipfile

    user = make_user(client)
    kb = create_kb(client, user)
    good, evil = io.BytesIO(), io.BytesIO()
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("notes/volcano.txt", VOLCANO)
        archive.writestr("notes/river.txt", RIVER)
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../../escape.txt", "nope")
    result = upload(client, user, kb["id"], {"notes.zip": good.getvalue()})
    assert result["stored"] == 2
    wait_for_documents(client, user, kb["id"], _indexed("volcano.txt", "river.txt"))
    refused = client.post(
        f"/api/v1/kbs/{kb['id']}/documents",
        files=[("files", ("evil.zip", evil.getvalue()))],
        headers=user.headers,
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "archive_unsafe_path"


@pytest.mark.both_databases
def test_another_user_sees_nothing(stack: Stack, client: httpx.Client) -> None:
    owner, intruder = make_user(client), make_user(client)
    kb = create_kb(client, owner)
    upload(client, owner, kb["id"], {"volcano.txt": VOLCANO.encode()})
    wait_for_documents(client, owner, kb["id"], _indexed("volcano.txt"))
    assert client.get("/api/v1/kbs", headers=intruder.headers).json()["count"] == 0
    for method, path, body in [
        ("GET", f"/api/v1/kbs/{kb['id']}", None),
        ("GET", f"/api/v1/kbs/{kb['id']}/documents", None),
        ("POST", f"/api/v1/kbs/{kb['id']}/retrieve", {"query": "crater lake"}),
        ("POST", f"/api/v1/kbs/{kb['id']}/reconcile", None),
        ("DELETE", f"/api/v1/kbs/{kb['id']}", None),
    ]:
        response = client.request(method, path, json=body, headers=intruder.headers)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "kb_not_found"
    # And the owner's knowledge base is untouched.
    assert retrieve(client, owner, kb["id"], "crater lake")[0]["document"] == "volcano.txt"


def test_changing_chunking_reindexes_every_document_and_leaves_no_old_chunks(
    stack: Stack, client: httpx.Client
) -> None:
    user, intruder = make_user(client), make_user(client)
    kb = create_kb(client, user, name="notes")
    long_text = "\n\n".join(
        f"Section {i}. The survey of site {i} found {i * 7} tern nests on the dunes, "
        f"and the warden counted {i * 3} seals on the sandbank at low tide."
        for i in range(1, 41)
    )
    upload(client, user, kb["id"], {"survey.txt": long_text.encode(), "river.md": RIVER.encode()})
    before = wait_for_documents(client, user, kb["id"], _indexed("survey.txt", "river.md"))
    key = kb["prefix"] + "survey.txt"
    assert chunk_count(stack.platform, kb["id"], key) == before["survey.txt"]["chunks"]

    path = f"/api/v1/kbs/{kb['id']}"
    foreign = client.patch(path, json={"chunking": {"chunk_tokens": 48}}, headers=intruder.headers)
    assert foreign.status_code == 404
    response = client.patch(
        path, json={"name": "Survey notes", "chunking": {"chunk_tokens": 48}}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Survey notes"
    assert response.json()["chunking"] == {"chunk_tokens": 48, "overlap_tokens": 0}

    after = wait_for_documents(
        client,
        user,
        kb["id"],
        lambda d: (
            _indexed("survey.txt", "river.md")(d)
            and d["survey.txt"]["chunks"] > before["survey.txt"]["chunks"]
        ),
    )
    # Exactly the new chunks: none of the old cut is left behind in the index.
    assert chunk_count(stack.platform, kb["id"], key) == after["survey.txt"]["chunks"]
    hits = retrieve(client, user, kb["id"], "How many seals at site 17?", k=3)
    assert any("site 17 " in h["snippet"] for h in hits)

    # A rename alone re-indexes nothing; bad settings and taken names are refused.
    assert client.patch(path, json={"name": "Renamed"}, headers=user.headers).status_code == 200
    assert documents(client, user, kb["id"])[0]["state"] == "indexed"
    bad = client.patch(path, json={"chunking": {"chunk_tokens": 8}}, headers=user.headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_chunking"
    create_kb(client, user, name="taken")
    clash = client.patch(path, json={"name": "taken"}, headers=user.headers)
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "kb_name_taken"


def test_reconcile_heals_lost_state(stack: Stack, client: httpx.Client) -> None:
    """The index loses a document behind everyone's back (its row and chunks, as if the
    events about it had never arrived); a reconcile pass finds it in the bucket again."""
    user = make_user(client)
    kb = create_kb(client, user)
    upload(client, user, kb["id"], {"volcano.txt": VOLCANO.encode()})
    doc = wait_for_documents(client, user, kb["id"], _indexed("volcano.txt"))["volcano.txt"]

    chroma = chromadb.HttpClient(
        host="127.0.0.1", port=int(stack.platform.env["EMBEDDED_CHROMA_PORT"])
    )
    chroma.get_collection(collection_name("all-MiniLM-L6-v2")).delete(where={KB_ID: kb["id"]})
    url = (
        stack.platform.env.get("DATABASE_URL")
        or f"sqlite:///{stack.platform.data_dir / 'forgeline.db'}"
    )
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text("DELETE FROM indexer_documents WHERE id = :id"), {"id": doc["id"]}
        )
    engine.dispose()
    assert documents(client, user, kb["id"]) == []
    assert retrieve(client, user, kb["id"], "crater lake") == []

    report = client.post(f"/api/v1/kbs/{kb['id']}/reconcile", headers=user.headers)
    assert report.status_code == 200
    assert report.json()["queued_for_indexing"] == 1
    wait_for_documents(client, user, kb["id"], _indexed("volcano.txt"))
    assert retrieve(client, user, kb["id"], "crater lake")[0]["document"] == "volcano.txt"


@pytest.mark.skipif(not FILINGS.is_dir(), reason="FinanceBench filings not present")
@pytest.mark.both_databases
def test_killing_the_worker_mid_document_leaves_no_duplicates(
    stack: Stack, client: httpx.Client
) -> None:
    user = make_user(client)
    kb = create_kb(client, user)
    big = (FILINGS / "BESTBUY_2023_10K.pdf").read_bytes()
    upload(client, user, kb["id"], {"bestbuy.pdf": big})
    worker = next(
        p
        for p in psutil.Process(stack.platform.process.pid).children(recursive=True)
        if "services.indexer.tasks" in " ".join(p.cmdline()) and "worker" in p.cmdline()
    )
    # Let it get going on the document, then kill the whole worker outright.
    wait_for_documents(
        client, user, kb["id"], lambda d: d.get("bestbuy.pdf", {}).get("state") == "pending"
    )
    import time

    time.sleep(4)
    for process in [worker, *worker.children(recursive=True)]:
        process.send_signal(signal.SIGKILL)
    docs = wait_for_documents(client, user, kb["id"], _indexed("bestbuy.pdf"), timeout=600)
    key = docs["bestbuy.pdf"]["key"]
    assert docs["bestbuy.pdf"]["chunks"] > 50
    assert chunk_count(stack.platform, kb["id"], key) == docs["bestbuy.pdf"]["chunks"]
    assert "worker stopped unexpectedly; restarting it" in stack.platform.log_path.read_text()
    assert documents(client, user, kb["id"])[0]["state"] == "indexed"
