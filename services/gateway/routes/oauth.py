"""OAuth 2 / OpenID Connect sign-in: list providers, start, and the provider's callback.

The `state` is also kept in a short-lived, HttpOnly cookie and must come back in the
callback from the same browser, so a sign-in link cannot be finished by someone else.
"""

from fastapi import APIRouter, Cookie, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from services.common.errors import Unauthenticated
from services.gateway.deps import AuthDep, SettingsDep
from services.gateway.openapi import ERRORS
from services.gateway.schemas import OAuthProviderPublic, OAuthProvidersPublic, TokenPairPublic
from services.gateway.settings import GatewaySettings

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
        secure=settings.public_url.startswith("https://"),
    )
    return response


@router.get("/{provider}/callback", response_model=TokenPairPublic, responses=ERRORS(401, 403, 404))
async def oauth_callback(
    response: Response,
    settings: SettingsDep,
    auth: AuthDep,
    provider: str = Path(max_length=32),
    code: str | None = Query(None, max_length=2048),
    state: str | None = Query(None, max_length=256),
    error: str | None = Query(None, max_length=256),
    cookie_state: str | None = Cookie(None, alias=STATE_COOKIE, max_length=256),
) -> TokenPairPublic:
    if error:
        raise Unauthenticated("oauth_denied", "Sign-in was cancelled at the provider.")
    if not state or not code or cookie_state != state:
        raise Unauthenticated(
            "oauth_state_invalid", "This sign-in link is no longer valid; please start again."
        )
    pair = await auth.complete_oauth(provider, code, state, _callback_url(settings, provider))
    response.delete_cookie(STATE_COOKIE, path=COOKIE_PATH)
    return TokenPairPublic.from_proto(pair)
