"""Who may create an account: open, invited addresses and domains only, or nobody."""

from __future__ import annotations

from services.auth.settings import AuthSettings
from services.common.errors import PermissionDenied


def invited(settings: AuthSettings, email: str) -> bool:
    """`email` (normalised) is on the list by itself or by its domain."""
    domain = email.rpartition("@")[2]
    for entry in settings.registration_invited.replace(",", " ").lower().split():
        if entry == email or entry.lstrip("@") == domain:
            return True
    return False


def check_may_register(settings: AuthSettings, email: str) -> None:
    """Raise unless the policy lets `email` create an account (by password or provider)."""
    mode = settings.registration_mode
    if mode == "open" or (mode == "invited" and invited(settings, email)):
        return
    if mode == "invited":
        raise PermissionDenied(
            "registration_not_invited",
            "This Forgeline only accepts invited addresses. Ask its administrator to add yours.",
        )
    raise PermissionDenied(
        "registration_closed",
        "This Forgeline does not accept new accounts. Ask its administrator for one.",
    )
