"""Administration: list users, disable or re-enable one, see a user's usage."""

from fastapi import APIRouter, Path, Query, Request

from services.gateway.deps import AdminPrincipal, AuthDep, DeployerDep, TokenCacheDep
from services.gateway.openapi import ERRORS
from services.gateway.routes.usage import UsageParams, usage_report
from services.gateway.schemas import UserPublic, UsersPublic, UserUpdate
from services.gateway.usage_schemas import UsageReport

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/users", response_model=UsersPublic, responses=ERRORS(401, 403))
async def list_users(
    principal: AdminPrincipal,
    auth: AuthDep,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> UsersPublic:
    page = await auth.list_users(principal.user.id, limit, offset)
    return UsersPublic(data=[UserPublic.from_proto(u) for u in page.users], count=page.count)


@router.patch("/users/{user_id}", response_model=UserPublic, responses=ERRORS(401, 403, 404, 422))
async def update_user(
    body: UserUpdate,
    principal: AdminPrincipal,
    auth: AuthDep,
    cache: TokenCacheDep,
    user_id: str = Path(max_length=64),
) -> UserPublic:
    """Disable a user (their sessions and keys stop working at once) or enable them again."""
    user = await auth.set_user_disabled(principal.user.id, user_id, body.disabled)
    cache.clear()
    return UserPublic.from_proto(user)


@router.get(
    "/users/{user_id}/usage", response_model=UsageReport, responses=ERRORS(401, 403, 404, 422)
)
async def user_usage(
    request: Request,
    query: UsageParams,
    principal: AdminPrincipal,
    auth: AuthDep,
    deployer: DeployerDep,
    user_id: str = Path(max_length=64),
) -> UsageReport:
    """A user's usage of the OpenAI-compatible API, as they see it at GET /usage."""
    await auth.get_user(user_id)  # 404 user_not_found for anyone who does not exist
    return await usage_report(request, user_id, query, auth, deployer)
