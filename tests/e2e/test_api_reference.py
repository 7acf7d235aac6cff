"""The API reference at /docs works offline and under the web client's policy: Swagger UI
comes from our own bundle, and nothing is fetched from another origin (it loaded scripts
and styles from a CDN, which a strict policy could not allow and an offline install lacks)."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.e2e.conftest import WebStack, open_page


def test_the_api_reference_loads_from_the_platform_alone(
    web_stack: WebStack, browser: Browser
) -> None:
    context, page, console = open_page(browser)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = page.goto(f"{web_stack.url}/docs")
    assert response is not None and response.ok
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"

    # The operations are listed, read from /openapi.json, and one opens.
    expect(page.get_by_role("heading", name="Forgeline API")).to_be_visible()
    login = page.locator(".opblock").filter(has_text="/api/v1/auth/login").first
    expect(login).to_be_visible()
    login.locator(".opblock-summary").click()
    expect(login.get_by_text("Request body")).to_be_visible()

    foreign = [url for url in requested if not url.startswith((web_stack.url, "data:", "blob:"))]
    assert foreign == [], foreign
    assert console.errors == [], console.errors  # a refused script or style would show here
    context.close()
