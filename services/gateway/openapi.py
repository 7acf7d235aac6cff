"""OpenAPI helpers: document the error envelope on every route that can return it."""

from typing import Any

from services.gateway.schemas import ErrorResponse


def ERRORS(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse} for status in statuses}
