"""From nothing to a conversation, in the browser only: deploy the bundled base model, watch
it become ready, chat with it (streamed, stopped half-way, then all at once), find the chat
in the history, and stop the deployment."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import WebStack, watch_console
from tests.factories import random_email

PASSWORD = "correct horse battery staple"
READY_TIMEOUT_MS = 900_000  # vLLM on a busy CPU


@pytest.mark.timeout(1800)
def test_deploy_a_base_model_and_chat_with_it(
    web_stack: WebStack, browser: Browser, artifacts: Path
) -> None:
    url = web_stack.url
    email = random_email("e2e-chat")
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        ).is_success
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console = watch_console(page)
    page.set_default_timeout(30_000)

    page.goto(f"{url}/deployments")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # Deploy the model offered first (the bundled one, on this machine).
    expect(page.get_by_label("Model", exact=True)).to_have_value(re.compile(r"^base:"))
    page.get_by_label("Name (optional)").fill("e2e-tutor")
    page.get_by_role("button", name="Deploy").click()
    expect(page.get_by_text("“e2e-tutor” is starting.")).to_be_visible()
    card = page.get_by_role("article", name="e2e-tutor")
    expect(card.get_by_text(re.compile(r"^(pending|starting)$"))).to_be_visible()
    page.screenshot(path=artifacts / "01-starting.png", full_page=True)
    expect(card.get_by_text("ready", exact=True)).to_be_visible(timeout=READY_TIMEOUT_MS)
    expect(card.get_by_label("Python example")).to_contain_text('model="e2e-tutor"')
    page.screenshot(path=artifacts / "02-ready.png", full_page=True)

    # Chat, streamed: the answer grows while the Stop button shows.
    card.get_by_role("link", name="Chat with it").click()
    expect(page.get_by_label("Model", exact=True)).to_have_value("e2e-tutor")
    page.get_by_label("Longest answer").select_option("64")
    page.get_by_label("Your message").fill("What is the capital of France?")
    page.get_by_label("Your message").press("Enter")
    answer = page.locator(".bubble-assistant .bubble-text").last
    expect(answer).not_to_be_empty(timeout=120_000)
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=120_000)
    page.screenshot(path=artifacts / "03-streamed-answer.png", full_page=True)

    # A long answer, stopped after its first words.
    page.get_by_label("Longest answer").select_option("2048")
    page.get_by_label("Your message").fill("Write a very long story about a lighthouse keeper.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".bubble-assistant .bubble-text").nth(1)).not_to_be_empty(timeout=120_000)
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text("Stopped.")).to_be_visible()
    page.screenshot(path=artifacts / "04-stopped.png", full_page=True)

    # All at once.
    page.get_by_label("Show the answer as it is written").uncheck()
    page.get_by_label("Longest answer").select_option("64")
    page.get_by_label("Your message").fill("Say hello.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".bubble-assistant .bubble-text").nth(2)).not_to_be_empty(timeout=120_000)
    page.screenshot(path=artifacts / "05-all-at-once.png", full_page=True)

    # The conversation was saved: it is in the history, and opens again after a reload.
    history = page.get_by_role("complementary", name="Your chats")
    expect(history.get_by_role("button", name="What is the capital of France?")).to_be_visible()
    page.reload()
    expect(page.get_by_text("Say hello.")).to_be_visible()
    page.screenshot(path=artifacts / "06-history.png", full_page=True)

    # Stop the deployment.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Deployments").click()
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="Stop").click()
    expect(card.get_by_text(re.compile(r"^(stopping|stopped)$"))).to_be_visible()
    page.screenshot(path=artifacts / "07-stopped-deployment.png", full_page=True)
    context.close()
    assert console.errors == []
