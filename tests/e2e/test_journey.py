"""The whole no-code journey in one browser session, so that training and vLLM run once for
the e2e suite: register; upload a small chat dataset and see its format and preview;
fine-tune the bundled SmolLM2-135M with LoRA for two steps and watch the loss chart; deploy
the fine-tuned version; meanwhile create a knowledge base and index a FinanceBench filing;
chat streamed, stop an answer half-way, all at once, find the chat after a reload; answer
from the filing with a citation that opens the PDF; stop the deployment."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import WebStack, open_page
from tests.e2e.quality import QualityReport, check_page, format_reports
from tests.factories import random_email
from tests.integration.dataset_helpers import GSM8K_TRAIN

PASSWORD = "correct horse battery staple"
TRAIN_TIMEOUT_MS = 900_000  # queue, Axolotl start-up, 2 steps, 1 benchmark question, merge
READY_TIMEOUT_MS = 900_000  # vLLM on a busy CPU
INDEX_TIMEOUT_MS = 300_000
FILINGS = GSM8K_TRAIN.parents[1] / "financebench" / "pdfs"
FILING = FILINGS / "AMCOR_2022_8K_dated-2022-07-01.pdf"  # 148 KB, 8-K
QUESTION = "What was the key agenda of the AMCOR's 8k filing dated 1st July 2022?"


def chat_dataset(folder: Path, rows: int = 16) -> Path:
    """GSM8K questions and answers as chat messages (the `chat` format)."""
    path = folder / "maths-chat.jsonl"
    lines = GSM8K_TRAIN.read_text().splitlines()[:rows]
    with path.open("w") as out:
        for line in lines:
            item = json.loads(line)
            messages = [
                {"role": "user", "content": item["question"]},
                {"role": "assistant", "content": item["answer"]},
            ]
            out.write(json.dumps({"messages": messages}) + "\n")
    return path


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


@pytest.mark.timeout(2400)
def test_fine_tune_deploy_chat_and_ask_documents(
    web_stack: WebStack, browser: Browser, artifacts: Path, tmp_path: Path
) -> None:
    url = web_stack.url
    email = random_email("e2e-journey")
    context, page, console = open_page(browser)
    # The pages full of live content (chart, log, citations) pass the same quality bar as
    # the quiet ones (test_quality_bar.py): axe-core and no sideways scroll, at both widths.
    quality: list[QualityReport] = []

    def audit(where: str) -> None:
        quality.append(check_page(page, where, keyboard=False))

    # Register.
    page.goto(url)
    page.get_by_role("tab", name="Create account").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()

    # Upload a small chat dataset: its format is detected, shown with a preview, confirmed.
    nav(page, "Datasets")
    expect(page.get_by_text("No datasets yet")).to_be_visible()
    page.get_by_label("Choose a file").set_input_files(chat_dataset(tmp_path))
    expect(page.get_by_role("heading", name="maths-chat.jsonl")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^This looks like Chat"))).to_be_visible(timeout=240_000)
    expect(page.get_by_text(re.compile(r"16 rows are ready to train on"))).to_be_visible()
    rows = page.get_by_role("list", name="Rows")
    expect(rows.get_by_role("listitem")).to_have_count(16)
    expect(rows.get_by_role("listitem").first).to_contain_text("Natalia sold clips")
    page.get_by_role("button", name="Confirm format").click()
    expect(page.get_by_text("Format confirmed: Chat.")).to_be_visible()
    page.screenshot(path=artifacts / "01-dataset.png", full_page=True)

    # The fine-tune wizard: the bundled model, this dataset, a two-step LoRA trial.
    page.get_by_role("link", name="Fine-tune on it").click()
    expect(page.get_by_role("radio", name=re.compile("SmolLM2"))).to_be_checked()
    expect(page.get_by_label("Your examples")).to_have_value(re.compile(r"\w+"))
    expect(page.get_by_role("radio", name=re.compile("Answer like my examples"))).to_be_checked()
    page.get_by_role("radio", name=re.compile("Quick trial")).check()
    page.get_by_text("Advanced settings").click()
    for label, value in (
        ("Stop after this many steps", "2"),
        ("Longest example, in tokens", "256"),
        ("Examples read at once (batch size)", "1"),
        ("Batches added up per step", "1"),
        ("Learning rate", "0.001"),
        ("Measure on held-out rows every … steps", "1"),
        ("Maths questions to compare base and tuned (GSM8K)", "1"),
    ):
        page.get_by_label(label).fill(value)
    page.get_by_label("Name (optional)").fill("e2e tutor")
    estimate = page.get_by_role("region", name="5. Estimate")
    expect(estimate.locator(".estimate-summary")).not_to_be_empty()
    # The exact Axolotl config of these choices, before anything starts.
    page.get_by_role("button", name="Show the Axolotl config").click()
    expect(page.get_by_label("Axolotl config")).to_contain_text("max_steps: 2")
    page.screenshot(path=artifacts / "02-fine-tune-wizard.png", full_page=True)
    page.get_by_role("button", name="Start fine-tuning").click()

    # The job page: stages, the loss chart filling in, then the evaluation.
    expect(page.get_by_role("heading", name="e2e tutor")).to_be_visible()
    expect(page.get_by_role("list", name="Stages")).to_be_visible()
    loss_points = page.locator('[data-series="Training loss"] circle')
    expect(loss_points.first).to_be_attached(timeout=TRAIN_TIMEOUT_MS)
    page.screenshot(path=artifacts / "03-training.png", full_page=True)
    expect(page.get_by_text("Your model is ready.")).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    expect(loss_points).to_have_count(2)
    # The held-out loss is always measured: a held-out row longer than the 256 tokens is
    # cut short, not dropped (5 of these 16 rows are longer; one is held out).
    expect(page.locator('[data-series="Held-out loss"] circle')).not_to_have_count(0)
    expect(page.get_by_role("img", name=re.compile(r"Training loss .* at step 2"))).to_be_visible()
    expect(page.get_by_role("heading", name="Evaluation: base vs tuned")).to_be_visible()
    page.screenshot(path=artifacts / "04-job-done.png", full_page=True)
    audit("the finished job")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=artifacts / "05-job-done-phone.png", full_page=True)
    audit("the finished job at phone width")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Deploy the fine-tuned version (prefilled from the job page), as merged weights.
    page.get_by_role("link", name="Deploy it").click()
    expect(page.get_by_label("Model", exact=True)).to_have_value(re.compile(r"^version:"))
    expect(page.get_by_role("radio", name=re.compile("Merged weights"))).to_be_checked()
    page.get_by_label("Name (optional)").fill("e2e-tuned")
    page.get_by_role("button", name="Deploy").click()
    expect(page.get_by_text("“e2e-tuned” is starting.")).to_be_visible()
    card = page.get_by_role("article", name="e2e-tuned")
    page.screenshot(path=artifacts / "06-deploying.png", full_page=True)

    # While vLLM starts: a knowledge base with one filing, indexed.
    nav(page, "Knowledge bases")
    page.get_by_label("Name", exact=True).fill("Filings")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Filings")).to_be_visible()
    page.get_by_label("Choose files").set_input_files(FILING)
    expect(page.get_by_text(re.compile(r"1 document added"))).to_be_visible()
    document = page.get_by_role("row", name=re.compile(FILING.name))
    expect(document.get_by_text("indexed", exact=True)).to_be_visible(timeout=INDEX_TIMEOUT_MS)
    page.screenshot(path=artifacts / "07-knowledge-base.png", full_page=True)

    # The deployment becomes ready; its server log is there to read.
    nav(page, "Deployments")
    expect(card.get_by_text("ready", exact=True)).to_be_visible(timeout=READY_TIMEOUT_MS)
    expect(card).to_contain_text("merged weights")
    card.get_by_text("Server log").click()
    expect(card.get_by_label("Server log of e2e-tuned")).not_to_be_empty()
    page.screenshot(path=artifacts / "08-ready.png", full_page=True)
    audit("a ready deployment with its log open")

    # Chat, streamed: the answer grows while the Stop button shows.
    card.get_by_role("link", name="Chat with it").click()
    expect(page.get_by_label("Model", exact=True)).to_have_value("e2e-tuned")
    page.get_by_label("Longest answer").select_option("64")
    page.get_by_label("Your message").fill("What is the capital of France?")
    page.get_by_label("Your message").press("Enter")
    answers = page.locator(".bubble-assistant .bubble-text")
    expect(answers.first).not_to_be_empty(timeout=120_000)
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=120_000)
    page.screenshot(path=artifacts / "09-streamed-answer.png", full_page=True)

    # A long answer, stopped after its first words.
    page.get_by_label("Longest answer").select_option("2048")
    page.get_by_label("Your message").fill("Write a very long story about a lighthouse keeper.")
    page.get_by_role("button", name="Send").click()
    expect(answers.nth(1)).not_to_be_empty(timeout=120_000)
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text("Stopped.")).to_be_visible()

    # All at once.
    page.get_by_label("Show the answer as it is written").uncheck()
    page.get_by_label("Longest answer").select_option("64")
    page.get_by_label("Your message").fill("Say hello.")
    page.get_by_role("button", name="Send").click()
    expect(answers.nth(2)).not_to_be_empty(timeout=120_000)
    page.screenshot(path=artifacts / "10-stopped-and-all-at-once.png", full_page=True)

    # The conversation was saved: it is in the history, and opens again after a reload.
    history = page.get_by_role("complementary", name="Your chats")
    expect(
        history.get_by_role("button", name="What is the capital of France?", exact=True)
    ).to_be_visible()
    page.reload()
    # The question, as the user's bubble (the tiny model may echo it back in its answer).
    expect(page.locator(".bubble-user .bubble-text").last).to_have_text("Say hello.")
    # Renamed in place, with the keyboard: Enter saves, and the name is kept.
    history.get_by_role("button", name="Rename What is the capital of France?").click()
    page.get_by_label("New title for What is the capital of France?").fill("Capitals and stories")
    page.keyboard.press("Enter")
    expect(history.get_by_role("button", name="Capitals and stories", exact=True)).to_be_visible()
    page.reload()
    expect(history.get_by_role("button", name="Capitals and stories", exact=True)).to_be_visible()

    # Answer from my documents: Home points the way (an indexed filing, a ready model), the
    # chat opens with the switch on; the filing is cited, and its source opens.
    nav(page, "Home")
    page.get_by_role("link", name="Ask your documents").click()
    expect(page.get_by_label("Answer from my documents")).to_be_checked()
    expect(page.get_by_label("Knowledge base").locator("option:checked")).to_have_text("Filings")
    expect(page.get_by_label("Show the answer as it is written")).to_be_checked()
    page.get_by_label("Your message").fill(QUESTION)
    page.get_by_role("button", name="Send").click()
    sources = page.get_by_role("list", name="Sources").last
    expect(sources).to_contain_text(FILING.name, timeout=180_000)
    page.screenshot(path=artifacts / "11-answer-from-documents.png", full_page=True)
    audit("a chat with citations")
    page.set_viewport_size({"width": 390, "height": 844})
    audit("a chat with citations at phone width")
    page.set_viewport_size({"width": 1280, "height": 900})
    with (
        context.expect_page() as opened,
        page.expect_response(lambda r: r.url.endswith("/file")) as served,
    ):
        sources.get_by_role("button", name=f"Open {FILING.name}").first.click()
    assert served.value.status == 200
    assert served.value.headers["content-type"] == "application/pdf"
    assert opened.value is not None

    # Usage: the chats above are counted against the deployment (4 answers: streamed,
    # stopped, all at once, from the documents; the gateway sends counts each second).
    nav(page, "Usage")
    deployments = page.get_by_role("table", name="Usage per deployment")
    expect(deployments.get_by_role("row", name=re.compile("e2e-tuned"))).to_be_visible()
    requests = page.get_by_role("region", name=re.compile("^Totals")).locator("dd").first
    expect(requests).to_have_text(re.compile(r"^[4-9]$|^\d{2,}$"))
    page.screenshot(path=artifacts / "12-usage.png", full_page=True)
    audit("usage after chatting")

    # Stop the deployment.
    nav(page, "Deployments")
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="Stop").click()
    expect(card.get_by_text(re.compile(r"^(stopping|stopped)$"))).to_be_visible()
    page.screenshot(path=artifacts / "13-stopped-deployment.png", full_page=True)
    context.close()
    assert console.errors == []
    problems = format_reports(quality)
    assert not problems, f"The quality bar is not met:\n{problems}"
