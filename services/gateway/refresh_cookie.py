"""The web client's refresh token, kept in an HttpOnly cookie out of page scripts' reach.

A refresh token lasts a month, so one read by an injected script would keep someone else's
session long after the page is closed. The web client therefore asks, with the
`X-Refresh-Cookie: 1` header, to receive it as a cookie instead of in the body: HttpOnly (no
script reads it), SameSite=Strict (no other site's request carries it) and sent only to the
refresh route. The same header must come with a refresh that relies on the cookie: a page on
another site cannot add a header without a CORS preflight, which the gateway never grants,
so a forged form post is refused even by a browser that ignores SameSite.

Integrators who send no header get the refresh token in the body, as before.
"""

from fastapi import Request, Response
from forgeline.v1 import auth_pb2

from services.gateway.schemas import TokenPairPublic
from services.gateway.settings import GatewaySettings

COOKIE = "fl_refresh"
PATH = "/api/v1/auth/refresh"
HEADER = "x-refresh-cookie"


def wanted(request: Request) -> bool:
    """Whether the caller is the web client asking for the cookie."""
    return request.headers.get(HEADER) == "1"


def from_request(request: Request) -> str | None:
    """The refresh token the cookie carries, only when the header vouches for the request."""
    return request.cookies.get(COOKIE) if wanted(request) else None


def answer(
    request: Request, response: Response, settings: GatewaySettings, pair: auth_pb2.TokenPair
) -> TokenPairPublic:
    """The pair as the caller gets it: for the web client, the refresh token set as the
    cookie on `response` and left out of the body."""
    public = TokenPairPublic.from_proto(pair)
    if not wanted(request):
        return public
    set_on(response, settings, pair.refresh_token, max_age=pair.refresh_expires_in)
    return public.model_copy(update={"refresh_token": None})


def set_on(response: Response, settings: GatewaySettings, token: str, *, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=settings.cookies_secure,
    )


def clear(response: Response, settings: GatewaySettings) -> None:
    response.delete_cookie(
        COOKIE, path=PATH, httponly=True, samesite="strict", secure=settings.cookies_secure
    )
