"""A newcomer's first minutes in the browser: create an account, land on Home, create an API
key in Settings and see it once; at desktop and phone width, with no console error."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import OIDC_DISPLAY_NAME, WebStack, open_page
from tests.factories import random_email

PASSWORD = "correct horse battery staple"


def test_register_home_and_api_key(web_stack: WebStack, browser: Browser, artifacts: Path) -> None:
    url = web_stack.url
    email = random_email("e2e")
    context, page, console = open_page(browser, height=860)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)

    # Signed out, the client opens on sign-in.
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/signin$"))
    page.get_by_role("tab", name="Create account").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.screenshot(path=artifacts / "01-register.png", full_page=True)
    page.get_by_role("button", name="Create account").click()

    # Home: counts of what you have (nothing yet) and the next step.
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    expect(page.get_by_text(f"Signed in as {email}.")).to_be_visible()
    next_step = page.get_by_role("region", name="Start with your data")
    expect(next_step).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^0\s*Datasets"))).to_be_visible()
    page.screenshot(path=artifacts / "02-home.png", full_page=True)

    # Settings: create a key; the whole key is shown once, with a copy button.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    expect(page.get_by_text("You have no API keys yet.")).to_be_visible()
    page.get_by_label("Key name").fill("e2e laptop")
    page.get_by_role("button", name="Create key").click()
    shown = page.get_by_test_id("new-api-key")
    expect(shown).to_have_text(re.compile(r"^flk_\w+_\S+$"))
    key = shown.inner_text()
    page.get_by_role("button", name="Copy key").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key
    page.screenshot(path=artifacts / "03-api-key-shown-once.png", full_page=True)

    # The key works against the API...
    me = httpx.get(f"{url}/api/v1/me", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == email

    # ...and is never shown again: after a reload (the page itself reloads: the gateway serves
    # the client for its own paths) only its prefix is listed.
    page.reload()
    expect(page.get_by_role("cell", name="e2e laptop", exact=True)).to_be_visible()
    expect(page.get_by_test_id("new-api-key")).to_have_count(0)
    assert key not in page.content()
    page.screenshot(path=artifacts / "04-after-reload.png", full_page=True)

    # Revoking it (after a confirmation) stops it at once.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke key e2e laptop").click()
    expect(page.get_by_text("You have no API keys yet.")).to_be_visible()
    me = httpx.get(f"{url}/api/v1/me", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert me.status_code == 401

    # Phone width: the navigation folds into a menu.
    page.set_viewport_size({"width": 390, "height": 844})
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    expect(nav).to_be_visible()
    page.screenshot(path=artifacts / "05-phone-menu.png", full_page=True)
    nav.get_by_role("link", name="Home").click()
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    page.screenshot(path=artifacts / "06-phone-home.png", full_page=True)

    context.close()
    assert console.errors == []


REFRESH_COOKIE = "fl_refresh"


def assert_refresh_token_out_of_scripts_reach(context: BrowserContext, page: Page) -> None:
    """Signed in, the refresh token is only an HttpOnly cookie sent to its own route: no
    script on the page (an injected one included) can read it."""
    readable = page.evaluate("() => JSON.stringify(localStorage) + document.cookie")
    assert "flr_" not in readable
    [cookie] = [c for c in context.cookies() if c["name"] == REFRESH_COOKIE]
    assert cookie["value"].startswith("flr_")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/api/v1/auth/refresh"


def test_sign_in_errors_deployments_and_chat(
    web_stack: WebStack, browser: Browser, artifacts: Path
) -> None:
    """Signing in with a wrong password says so; with nothing deployed yet, Deployments
    offers the base models and Chat points there."""
    url = web_stack.url
    email = random_email("e2e")
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        ).is_success
    context, page, console = open_page(browser, height=860)

    page.goto(f"{url}/deployments")  # signed out: sign in first, then back here
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("The email or password is not correct.")
    page.screenshot(path=artifacts / "01-wrong-password.png", full_page=True)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Deployments", exact=True)).to_be_visible()
    expect(page.get_by_text("Nothing deployed yet")).to_be_visible()
    assert_refresh_token_out_of_scripts_reach(context, page)
    # An access token that stopped working is renewed through the cookie, unseen.
    page.evaluate(
        """() => {
          const session = JSON.parse(localStorage.getItem("forgeline.session"));
          session.accessToken = "no-longer-valid";
          localStorage.setItem("forgeline.session", JSON.stringify(session));
        }"""
    )
    page.reload()
    expect(page.get_by_text("Nothing deployed yet")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    model = page.get_by_label("Model", exact=True)
    expect(model.locator("option")).not_to_have_count(0)
    page.screenshot(path=artifacts / "02-deployments-empty.png", full_page=True)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chat").click()
    expect(page.get_by_text("No model is ready to chat with yet.")).to_be_visible()
    expect(page.get_by_label("Your message")).to_be_disabled()
    page.screenshot(path=artifacts / "03-chat-no-model.png", full_page=True)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("tab", name="Sign in")).to_be_visible()
    assert not [c for c in context.cookies() if c["name"] == REFRESH_COOKIE]
    context.close()
    # The wrong password's 401 and the stale token's are the failed requests the browser logs
    # by itself.
    assert [e for e in console.errors if "status of 401" not in e] == []


def test_sign_in_with_a_provider(web_stack: WebStack, browser: Browser, artifacts: Path) -> None:
    """The provider's button goes through the provider and back into the client, signed in."""
    url = web_stack.url
    email = random_email("e2e-oidc")
    web_stack.idp.set_account(secrets.token_hex(8), email, email_verified=True)
    context, page, console = open_page(browser, height=860)

    page.goto(f"{url}/signin")
    button = page.get_by_role("link", name=f"Continue with {OIDC_DISPLAY_NAME}")
    expect(button).to_be_visible()
    page.screenshot(path=artifacts / "01-providers.png", full_page=True)
    button.click()

    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    expect(page.get_by_text(f"Signed in as {email}.")).to_be_visible()
    assert "access_token" not in page.url  # the tokens left the address bar
    assert_refresh_token_out_of_scripts_reach(context, page)
    page.screenshot(path=artifacts / "02-home.png", full_page=True)
    context.close()
    assert console.errors == []
