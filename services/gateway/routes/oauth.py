"""OAuth 2 / OpenID Connect sign-in: list providers, start, and the provider's callback.

The `state` is also kept in a short-lived, HttpOnly cookie and must come back in the
callback from the same browser, so a sign-in link cannot be finished by someone else.
"""

import json
from urllib.parse import urlencode

from fastapi import APIRouter, Cookie, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from forgeline.v1 import auth_pb2

from services.common.errors import ForgelineError, Unauthenticated
from services.gateway import refresh_cookie
from services.gateway.deps import AuthDep, SettingsDep
from services.gateway.openapi import ERRORS
from services.gateway.schemas import OAuthProviderPublic, OAuthProvidersPublic, TokenPairPublic
from services.gateway.settings import GatewaySettings
from services.gateway.web import OAUTH_PAGE, wants_web_page

router = APIRouter(prefix="/auth/oauth", tags=["auth"])
STATE_COOKIE = "fl_oauth_state"
COOKIE_PATH = "/api/v1/auth/oauth"


def _callback_url(settings: GatewaySettings, provider: str) -> str:
    return f"{settings.public_url.rstrip('/')}/api/v1/auth/oauth/{provider}/callback"


@router.get("/providers", response_model=OAuthProvidersPublic)
async def providers(request: Request, auth: AuthDep) -> OAuthProvidersPublic:
    listed = (await auth.list_oauth_providers()).providers
    data = [
        OAuthProviderPublic(
            name=p.name,
            display_name=p.display_name,
            start_url=str(request.url_for("start_oauth", provider=p.name).path),
        )
        for p in listed
    ]
    return OAuthProvidersPublic(data=data, count=len(data))


@router.get(
    "/{provider}/start",
    status_code=302,
    response_class=RedirectResponse,
    responses={**ERRORS(404, 503), 302: {"description": "Redirect to the provider"}},
)
async def start_oauth(
    settings: SettingsDep, auth: AuthDep, provider: str = Path(max_length=32)
) -> RedirectResponse:
    started = await auth.start_oauth(provider, _callback_url(settings, provider))
    response = RedirectResponse(started.authorization_url, status_code=302)
    response.set_cookie(
        STATE_COOKIE,
        started.state,
        max_age=600,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=settings.cookies_secure,
    )
    return response


@router.get("/{provider}/callback", response_model=TokenPairPublic, responses=ERRORS(401, 403, 404))
async def oauth_callback(
    request: Request,
    response: Response,
    settings: SettingsDep,
    auth: AuthDep,
    provider: str = Path(max_length=32),
    code: str | None = Query(None, max_length=2048),
    state: str | None = Query(None, max_length=256),
    error: str | None = Query(None, max_length=256),
    cookie_state: str | None = Cookie(None, alias=STATE_COOKIE, max_length=256),
) -> TokenPairPublic | RedirectResponse:
    """The provider sends the browser here. A program gets the token pair as JSON; a browser
    (with the web client built) is sent on to the client's page with the pair, or the error's
    sentence, in the URL fragment, which never reaches a server."""
    try:
        pair = await _complete(settings, auth, provider, code, state, error, cookie_state)
    except ForgelineError as failure:
        if not wants_web_page(request.headers.get("accept", "")):
            raise
        return _to_web_client({"error": failure.message})
    public = TokenPairPublic.from_proto(pair)
    if wants_web_page(request.headers.get("accept", "")):
        # The refresh token goes into its HttpOnly cookie, not into the page's reach.
        redirect = _to_web_client({
            "access_token": public.access_token,
            "user": json.dumps(public.user.model_dump(mode="json")),
        })  # fmt: skip
        refresh_cookie.set_on(
            redirect, settings, pair.refresh_token, max_age=pair.refresh_expires_in
        )
        redirect.delete_cookie(STATE_COOKIE, path=COOKIE_PATH)
        return redirect
    response.delete_cookie(STATE_COOKIE, path=COOKIE_PATH)
    return public


def _to_web_client(fragment: dict[str, str]) -> RedirectResponse:
    response = RedirectResponse(f"{OAUTH_PAGE}#{urlencode(fragment)}", status_code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _complete(
    settings: GatewaySettings,
    auth: AuthDep,
    provider: str,
    code: str | None,
    state: str | None,
    error: str | None,
    cookie_state: str | None,
) -> auth_pb2.TokenPair:
    if error:
        raise Unauthenticated("oauth_denied", "Sign-in was cancelled at the provider.")
    if not state or not code or cookie_state != state:
        raise Unauthenticated(
            "oauth_state_invalid", "This sign-in link is no longer valid; please start again."
        )
    return await auth.complete_oauth(provider, code, state, _callback_url(settings, provider))
