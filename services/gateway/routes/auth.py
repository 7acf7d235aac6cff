"""Register, sign in, refresh, sign out."""

from fastapi import APIRouter, Request, Response, status
from forgeline.v1 import auth_pb2

from services.common.errors import InvalidInput, Unauthenticated
from services.gateway import refresh_cookie
from services.gateway.deps import (
    AuthDep,
    BearerToken,
    CurrentPrincipal,
    SettingsDep,
    SignInThrottleDep,
    TokenCacheDep,
)
from services.gateway.openapi import ERRORS
from services.gateway.schemas import (
    Credentials,
    RefreshRequest,
    Registration,
    TokenPairPublic,
    UserPublic,
)
from services.gateway.sign_in_throttle import client_address

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/register",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS(403, 409, 422, 429),
)
async def register(
    body: Registration, request: Request, auth: AuthDep, throttle: SignInThrottleDep
) -> UserPublic:
    """Create a member account, where the registration policy allows it. With the one-time
    `setup_code` that `make run` printed, the account is the first administrator. Each
    address may register a limited number of accounts an hour (429 `too_many_attempts`)."""
    await throttle.before_registration(client_address(request))
    return UserPublic.from_proto(await auth.register(body.email, body.password, body.setup_code))


@router.post("/login", response_model=TokenPairPublic, responses=ERRORS(401, 403, 422, 429))
async def login(
    body: Credentials,
    request: Request,
    response: Response,
    settings: SettingsDep,
    auth: AuthDep,
    throttle: SignInThrottleDep,
) -> TokenPairPublic:
    """Exchange email and password for an access token and a refresh token. An address that
    failed too often lately waits (429 `too_many_attempts`, with `Retry-After`), whether or
    not the account exists; accounts themselves are never locked. With `X-Refresh-Cookie: 1`
    (the web client), the refresh token comes as an HttpOnly cookie for the refresh route, and
    `refresh_token` is null."""
    address = client_address(request)
    await throttle.before_sign_in(address, body.email)
    try:
        pair = await auth.login(body.email, body.password)
    except Unauthenticated:
        await throttle.sign_in_failed(address, body.email)
        raise
    return refresh_cookie.answer(request, response, settings, pair)


@router.post("/refresh", response_model=TokenPairPublic, responses=ERRORS(401, 403, 422))
async def refresh(
    body: RefreshRequest, request: Request, response: Response, settings: SettingsDep, auth: AuthDep
) -> TokenPairPublic:
    """Trade a refresh token for a new pair. Each refresh token works once; using one twice
    ends the session. The web client sends none in the body: with `X-Refresh-Cookie: 1` its
    cookie is used, and the new one is set in its place."""
    token = body.refresh_token or refresh_cookie.from_request(request)
    if not token:
        raise Unauthenticated(
            "refresh_token_missing", "Send the refresh token you were given at sign-in."
        )
    return refresh_cookie.answer(request, response, settings, await auth.refresh(token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS(400, 401))
async def logout(
    principal: CurrentPrincipal,
    token: BearerToken,
    settings: SettingsDep,
    auth: AuthDep,
    cache: TokenCacheDep,
) -> Response:
    """End the session of the access token sent; its refresh token stops working too, and
    the web client's refresh cookie is cleared."""
    if principal.kind != auth_pb2.CREDENTIAL_KIND_ACCESS_TOKEN:
        raise InvalidInput(
            "logout_needs_session", "Sign out with an access token; revoke API keys instead."
        )
    await auth.logout(token)
    cache.clear()
    ended = Response(status_code=status.HTTP_204_NO_CONTENT)
    refresh_cookie.clear(ended, settings)
    return ended
