from fastapi import APIRouter

from services.gateway.deps import CurrentPrincipal
from services.gateway.openapi import ERRORS
from services.gateway.schemas import UserPublic

router = APIRouter(tags=["me"])


@router.get("/me", response_model=UserPublic, responses=ERRORS(401))
async def me(principal: CurrentPrincipal) -> UserPublic:
    """The account behind the credential sent."""
    return UserPublic.from_proto(principal.user)
