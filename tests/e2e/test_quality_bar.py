"""The quality bar on every page, for a user who has a little of everything (a dataset, a
cancelled job, a knowledge base with a document, an API key): at 1280 px and at phone
width, each page passes axe-core's WCAG 2.1 A/AA rules, never scrolls sideways, and Tab alone
reaches each of its controls with a visible focus mark. Signed out, the sign-in page too. A
last check signs in and moves about with the keyboard only."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, WebStack, open_page
from tests.e2e.quality import QualityReport, check_page, format_reports
from tests.e2e.test_journey import chat_dataset
from tests.factories import login, random_email

PASSWORD = "correct horse battery staple"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def _wait(what: str, check: object, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _user_with_a_bit_of_everything(url: str, tmp_path: Path) -> dict[str, str]:
    """Through the API: a dataset, a job cancelled at once, a knowledge base with one indexed
    document, an API key. Returns the ids the pages need."""
    email = random_email("e2e-quality")
    with httpx.Client(base_url=url, timeout=60) as client:
        assert client.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        ).is_success
        headers = {"Authorization": f"Bearer {login(client, email, PASSWORD)['access_token']}"}
        data = chat_dataset(tmp_path).read_bytes()
        dataset = client.post(
            "/api/v1/datasets", files={"file": ("maths-chat.jsonl", data)}, headers=headers
        ).json()
        _wait(
            "the dataset's inspection",
            lambda: (
                client.get(f"/api/v1/datasets/{dataset['id']}", headers=headers).json()["state"]
                != "inspecting"
            ),
        )
        job = client.post(
            "/api/v1/jobs",
            json={"name": "quality check", "dataset_id": dataset["id"], "preset": "quick"},
            headers=headers,
        )
        assert job.status_code == 201, job.text
        job_id = job.json()["id"]
        assert client.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers).is_success
        kb = client.post("/api/v1/kbs", json={"name": "Handbook"}, headers=headers).json()
        text = b"Leave policy. Each employee has 25 days of paid leave a year.\n" * 20
        assert client.post(
            f"/api/v1/kbs/{kb['id']}/documents",
            files={"files": ("handbook.txt", text, "text/plain")},
            headers=headers,
        ).is_success
        _wait(
            "the document's indexing",
            lambda: all(
                d["state"] != "pending"
                for d in client.get(f"/api/v1/kbs/{kb['id']}/documents", headers=headers).json()[
                    "data"
                ]
            ),
        )
        assert client.post("/api/v1/api-keys", json={"name": "laptop"}, headers=headers).is_success
    return {"email": email, "dataset": dataset["id"], "job": job_id, "kb": kb["id"]}


def signed_in_pages(ids: dict[str, str]) -> dict[str, str]:
    """Every page of the client for a signed-in user, with the user's own items for details."""
    return {
        "home": "/",
        "datasets": "/datasets",
        "dataset": f"/datasets/{ids['dataset']}",
        "fine-tune": "/fine-tune",
        "jobs": "/jobs",
        "job": f"/jobs/{ids['job']}",
        "models": "/models",
        "deployments": "/deployments",
        "chat": "/chat",
        "knowledge-bases": "/knowledge-bases",
        "knowledge-base": f"/knowledge-bases/{ids['kb']}",
        "usage": "/usage",
        "settings": "/settings",
    }


def sign_in(page: Page, email: str, password: str) -> None:
    """With the sign-in page open: sign in, and land on Home."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()


def _settle(page: Page) -> None:
    """The page's heading is up and nothing says it is still loading."""
    expect(page.locator("main h1").first).to_be_visible()
    expect(page.get_by_role("status").filter(has_text=re.compile(r"^Loading"))).to_have_count(0)


@pytest.mark.timeout(1200)
def test_every_page_meets_the_quality_bar(
    web_stack: WebStack, browser: Browser, artifacts: Path, tmp_path: Path
) -> None:
    url = web_stack.url
    ids = _user_with_a_bit_of_everything(url, tmp_path)
    pages = {**signed_in_pages(ids), "not-found": "/no-such-page"}
    reports: list[QualityReport] = []
    for width_name, (width, height) in WIDTHS.items():
        context, page, console = open_page(browser, width=width, height=height)

        page.goto(f"{url}/signin")
        expect(page.get_by_role("tab", name="Sign in")).to_be_visible()
        reports.append(check_page(page, f"sign-in at {width_name} width"))
        page.screenshot(path=artifacts / f"{width_name}-signin.png", full_page=True)
        sign_in(page, ids["email"], PASSWORD)

        for name, path in pages.items():
            page.goto(url + path)
            _settle(page)
            page.screenshot(path=artifacts / f"{width_name}-{name}.png", full_page=True)
            reports.append(check_page(page, f"{name} ({path}) at {width_name} width"))
        if width_name == "phone":
            # The folded menu, open.
            page.get_by_role("button", name="Menu").click()
            expect(page.get_by_role("navigation", name="Main")).to_be_visible()
            reports.append(check_page(page, "the open menu at phone width"))
        context.close()
        assert console.errors == [], console.errors
    problems = format_reports(reports)
    assert not problems, f"The quality bar is not met:\n{problems}"


def test_keyboard_only(web_stack: WebStack, browser: Browser, artifacts: Path) -> None:
    """Sign up, reach a page through the menu, and fill a form, with the keyboard alone."""
    context, page, console = open_page(browser)
    page.goto(web_stack.url)

    # The sign-in card's tabs take one Tab stop; the arrow keys move between them.
    tab_until(page, lambda p: p.get_by_role("tab", name="Sign in"))
    page.keyboard.press("ArrowRight")
    create_account = page.get_by_role("tab", name="Create account")
    expect(create_account).to_be_focused()
    expect(create_account).to_have_attribute("aria-selected", "true")
    tab_until(page, lambda p: p.get_by_label("Email"))
    page.keyboard.type(random_email("e2e-keys"))
    tab_until(page, lambda p: p.get_by_label("Password"))
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()

    # The skip link comes first, then the menu; Enter follows a link.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    menu = page.get_by_role("navigation", name="Main")
    tab_until(page, lambda p: menu.get_by_role("link", name="Knowledge bases"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Knowledge bases", exact=True)).to_be_visible()
    tab_until(page, lambda p: p.get_by_label("Name", exact=True))
    page.keyboard.type("Keyboard notes")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Keyboard notes")).to_be_visible()
    page.screenshot(path=artifacts / "01-created-by-keyboard.png", full_page=True)
    context.close()
    assert console.errors == []


def tab_until(page: Page, target: object, *, presses: int = 60) -> None:
    """Press Tab until the target has the focus (forwards only, as a keyboard user would)."""
    locator = target(page)  # type: ignore[operator]
    for _ in range(presses):
        page.keyboard.press("Tab")
        if locator.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {locator}")


# What a person must never be shown in place of a sentence.
RAW_ERRORS = re.compile(
    r"Failed to fetch|NetworkError|TypeError|SyntaxError|Unexpected token|\[object Object\]"
    r"|<html|undefined|status code \d+",
    re.IGNORECASE,
)


@pytest.mark.timeout(600)
def test_failing_requests_read_as_sentences(
    web_stack: WebStack, browser: Browser, artifacts: Path, tmp_path: Path
) -> None:
    """Each page, when the API cannot be reached, and when a proxy in front of it answers
    with an HTML error page: a sentence says so (no raw error), and the page recovers once
    the API is back."""
    url = web_stack.url
    ids = _user_with_a_bit_of_everything(url, tmp_path)
    context, page, console = open_page(browser)
    page.goto(f"{url}/signin")
    sign_in(page, ids["email"], PASSWORD)

    api = re.compile(r"/(api/v1|v1)/")
    failures = {
        "unreachable": lambda route: route.abort("connectionrefused"),
        "proxy error page": lambda route: route.fulfill(
            status=502, content_type="text/html", body="<html><body>Bad Gateway</body></html>"
        ),
    }
    # Every page that loads something (the wizard and the 404 page load nothing first).
    pages = signed_in_pages(ids)
    del pages["fine-tune"]
    for name, path in pages.items():
        for failure, handler in failures.items():
            page.route(api, handler)
            page.goto(url + path)
            alert = page.get_by_role("alert").first
            expect(alert).to_be_visible()
            sentence = alert.locator("span").first.inner_text().strip()
            assert re.fullmatch(r"[A-Z].{15,}[.!?]", sentence), (name, failure, sentence)
            shown = page.locator("main").inner_text()
            assert not RAW_ERRORS.search(shown), (name, failure, shown)
            page.screenshot(path=artifacts / f"{name}-{failure.replace(' ', '-')}.png")
            page.unroute(api)
        # Back: the page loads without an error (no sign-out on the way).
        page.goto(url + path)
        _settle(page)
        expect(page.get_by_role("alert")).to_have_count(0)
    context.close()
    # The failed requests are the only errors the browser logged.
    assert [
        error
        for error in console.errors
        if "Failed to load resource" not in error and "status of 502" not in error
    ] == []


@pytest.mark.timeout(600)
def test_an_administrator_manages_people(
    web_stack: WebStack, browser: Browser, artifacts: Path
) -> None:
    """The administrator's pages pass the same bar at both widths, and disabling someone on
    People locks them out at once, until they are enabled again."""
    url = web_stack.url
    member = random_email("e2e-member")
    with httpx.Client(base_url=url, timeout=60) as client:
        assert client.post(
            "/api/v1/auth/register", json={"email": member, "password": PASSWORD}
        ).is_success
    reports: list[QualityReport] = []
    for width_name, (width, height) in WIDTHS.items():
        context, page, console = open_page(browser, width=width, height=height)
        page.goto(f"{url}/signin")
        sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
        for name, path in (("people", "/people"), ("usage", "/usage")):
            page.goto(url + path)
            _settle(page)
            page.screenshot(path=artifacts / f"{width_name}-{name}.png", full_page=True)
            reports.append(check_page(page, f"{name} as administrator at {width_name} width"))
        context.close()
        assert console.errors == [], console.errors

    context, page, console = open_page(browser)
    page.goto(f"{url}/signin")
    sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="People").click()
    row = page.get_by_role("row", name=re.compile(re.escape(member)))
    # The member may be on a later page of people.
    showing = page.get_by_text(re.compile(r"^Showing \d"))
    expect(showing).to_be_visible()
    for _ in range(20):
        if row.count():
            break
        before = showing.inner_text()
        page.get_by_role("button", name="Next").click()
        expect(showing).not_to_have_text(before)
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=f"Disable {member}").click()
    expect(row.get_by_text("Disabled", exact=True)).to_be_visible()
    with httpx.Client(base_url=url, timeout=60) as client:
        refused = client.post("/api/v1/auth/login", json={"email": member, "password": PASSWORD})
        assert refused.status_code == 403, refused.text
        row.get_by_role("button", name=f"Enable {member}").click()
        expect(row.get_by_text("Active", exact=True)).to_be_visible()
        login(client, member, PASSWORD)
    page.screenshot(path=artifacts / "people-after-enable.png", full_page=True)
    context.close()
    assert console.errors == []
    problems = format_reports(reports)
    assert not problems, f"The quality bar is not met:\n{problems}"
