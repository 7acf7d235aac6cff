"""Personal API keys: create (shown once), list, revoke."""

from fastapi import APIRouter, Path, Response, status
from forgeline.v1 import auth_pb2

from services.common.errors import InvalidInput
from services.gateway.deps import AuthDep, CurrentPrincipal, SettingsDep, TokenCacheDep
from services.gateway.openapi import ERRORS
from services.gateway.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeysPublic

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS(401, 422),
)
async def create_api_key(
    body: ApiKeyCreate, principal: CurrentPrincipal, auth: AuthDep, settings: SettingsDep
) -> ApiKeyCreated:
    """Create a key. The response holds the whole key, shown this once only. A key may
    carry its own rate limits on `/v1` (requests and tokens a minute), at most the
    platform's default. A request made with a key creates keys within that key's scopes
    and limits only: a `user` key cannot mint an admin key, a limited one an unlimited one."""
    scopes: list[str] = list(body.scopes) or list(principal.scopes)
    if not set(scopes) <= set(principal.scopes):
        raise InvalidInput(
            "invalid_scopes",
            f"A key can only hold scopes the caller has: {', '.join(principal.scopes)}.",
        )
    from_key = principal.kind == auth_pb2.CREDENTIAL_KIND_API_KEY
    for name, own, callers, default in (
        (
            "requests_per_minute",
            body.requests_per_minute,
            principal.requests_per_minute,
            settings.rate_limit_requests_per_minute,
        ),
        (
            "tokens_per_minute",
            body.tokens_per_minute,
            principal.tokens_per_minute,
            settings.rate_limit_tokens_per_minute,
        ),
    ):
        # A key's limit of 0 means "the platform's default", so a limited caller must name
        # a limit for the new key too, or the new key would escape the caller's.
        ceiling = callers if from_key and callers else default
        if from_key and callers and not own:
            raise InvalidInput(
                "rate_limit_too_high",
                f"This key is limited to {callers} {name.replace('_', ' ')}: set {name} to at "
                "most that for the new key.",
            )
        if own and ceiling and own > ceiling:
            whose = (
                "this key's limit" if ceiling == callers and from_key else "the platform's limit"
            )
            raise InvalidInput("rate_limit_too_high", f"{name} can be at most {whose}, {ceiling}.")
    created = await auth.create_api_key(
        principal.user.id,
        body.name,
        scopes,
        requests_per_minute=body.requests_per_minute or 0,
        tokens_per_minute=body.tokens_per_minute or 0,
    )
    public = ApiKeyPublic.from_proto(created.key)
    return ApiKeyCreated(**public.model_dump(), key=created.secret)


@router.get("", response_model=ApiKeysPublic, responses=ERRORS(401))
async def list_api_keys(principal: CurrentPrincipal, auth: AuthDep) -> ApiKeysPublic:
    keys = [ApiKeyPublic.from_proto(k) for k in (await auth.list_api_keys(principal.user.id)).keys]
    return ApiKeysPublic(data=keys, count=len(keys))


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS(401, 404))
async def revoke_api_key(
    principal: CurrentPrincipal,
    auth: AuthDep,
    cache: TokenCacheDep,
    key_id: str = Path(max_length=64),
) -> Response:
    """Revoke a key; it stops working at once."""
    await auth.revoke_api_key(principal.user.id, key_id)
    cache.clear()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
