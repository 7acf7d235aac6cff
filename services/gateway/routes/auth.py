"""Register, sign in, refresh, sign out."""

from fastapi import APIRouter, Response, status
from forgeline.v1 import auth_pb2

from services.common.errors import InvalidInput
from services.gateway.deps import AuthDep, BearerToken, CurrentPrincipal, TokenCacheDep
from services.gateway.openapi import ERRORS
from services.gateway.schemas import (
    Credentials,
    RefreshRequest,
    Registration,
    TokenPairPublic,
    UserPublic,
)

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/register",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS(403, 409, 422),
)
async def register(body: Registration, auth: AuthDep) -> UserPublic:
    """Create a member account, where the registration policy allows it. With the one-time
    `setup_code` that `make run` printed, the account is the first administrator."""
    return UserPublic.from_proto(await auth.register(body.email, body.password, body.setup_code))


@router.post("/login", response_model=TokenPairPublic, responses=ERRORS(401, 403, 422, 429))
async def login(body: Credentials, auth: AuthDep) -> TokenPairPublic:
    """Exchange email and password for an access token and a refresh token."""
    return TokenPairPublic.from_proto(await auth.login(body.email, body.password))


@router.post("/refresh", response_model=TokenPairPublic, responses=ERRORS(401, 403, 422))
async def refresh(body: RefreshRequest, auth: AuthDep) -> TokenPairPublic:
    """Trade a refresh token for a new pair. Each refresh token works once; using one twice
    ends the session."""
    return TokenPairPublic.from_proto(await auth.refresh(body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS(400, 401))
async def logout(
    principal: CurrentPrincipal, token: BearerToken, auth: AuthDep, cache: TokenCacheDep
) -> Response:
    """End the session of the access token sent; its refresh token stops working too."""
    if principal.kind != auth_pb2.CREDENTIAL_KIND_ACCESS_TOKEN:
        raise InvalidInput(
            "logout_needs_session", "Sign out with an access token; revoke API keys instead."
        )
    await auth.logout(token)
    cache.clear()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
