"""The web client (`web/dist`, built by `make web`): its files, and its `index.html` for any
other path that is not the API's, so that a page of the client can be reloaded or linked to
(`/settings`, `/chat?chat=…`): the client's router draws it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

# Paths that belong to the API: an unknown one stays a JSON 404.
API_PATHS = ("api/", "v1/", "healthz", "docs", "openapi.json")

# The client keeps its session in localStorage, so an injected script could read it: the
# policy lets the page run only its own bundled scripts (Vite emits no inline script) and
# talk only to its own origin, and no other site may frame it (clickjacking). Cited PDFs
# open as blob: URLs, which inherit the policy, hence blob: for frames and objects.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'self' blob:",
        "frame-src 'self' blob:",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class WebClient(StaticFiles):
    def __init__(self, directory: Path, **kwargs: Any) -> None:
        super().__init__(directory=directory, html=True, **kwargs)

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as error:
            if error.status_code != 404 or not _is_page(path, scope):
                raise
            response = await super().get_response("index.html", scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def _is_page(path: str, scope: Scope) -> bool:
    """A page of the client: a GET of a path with no file extension, outside the API."""
    path = path.lstrip("/")
    last = path.rsplit("/", 1)[-1]
    return (
        scope.get("method") in ("GET", "HEAD")
        and not path.startswith(API_PATHS)
        and "." not in last
    )


WEB_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"
OAUTH_PAGE = "/signin/oauth"  # the client's page that finishes a provider sign-in


API_REFERENCE_PAGE = WEB_DIST / "api-docs.html"


def api_reference() -> Response:
    """/docs: Swagger UI, bundled into the web client (no CDN), under the client's policy."""
    if not API_REFERENCE_PAGE.is_file():
        return JSONResponse(
            {
                "error": {
                    "code": "api_reference_not_built",
                    "message": "The API reference is built with the web client: run `make web`. "
                    "The schema itself is at /openapi.json.",
                }
            },
            status_code=404,
        )
    return FileResponse(API_REFERENCE_PAGE, headers=SECURITY_HEADERS)


def wants_web_page(accept: str) -> bool:
    """A browser navigating (not a program calling the API), with the client built."""
    return "text/html" in accept and WEB_DIST.is_dir()
