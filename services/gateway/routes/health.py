from fastapi import APIRouter

from services.gateway.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the gateway process answers. Needs no credentials."""
    return Health()
