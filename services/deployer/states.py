"""The life of a deployment, as pure rules: which state may follow which, what a name may
look like, and what a failed start means. No database, no processes: unit-tested alone.

    pending -> starting -> ready -> stopping -> stopped
                  ^          |
                  +----------+  (the server died: restarted, `restarts` counted)
    any live state -> failed (a first start that failed, or too many failed restarts)
"""

from __future__ import annotations

import math
import re
import secrets
from datetime import datetime, timedelta

from services.common.errors import InvalidInput

PENDING = "pending"
STARTING = "starting"
READY = "ready"
STOPPING = "stopping"
STOPPED = "stopped"
FAILED = "failed"
STATES = (PENDING, STARTING, READY, STOPPING, STOPPED, FAILED)
# States with (or about to have) a server; a name is taken while a deployment is in one.
LIVE = frozenset({PENDING, STARTING, READY, STOPPING})
ENDED = frozenset({STOPPED, FAILED})

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({STARTING, STOPPING, FAILED}),
    STARTING: frozenset({STARTING, READY, STOPPING, FAILED}),
    READY: frozenset({STARTING, STOPPING, FAILED}),
    STOPPING: frozenset({STOPPED}),
    STOPPED: frozenset(),
    FAILED: frozenset({STOPPING, STOPPED}),
}

TARGETS = ("local", "aws", "gcp")
CLOUD_TARGETS = frozenset({"aws", "gcp"})
# Why a deployment stopped.
STOPPED_BY_USER = "user"
STOPPED_IDLE = "idle"
STOPPED_USER_DISABLED = "user_disabled"

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def can_move(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


def check_target(target: str) -> str:
    """The target, or a clear 422 for an unknown one."""
    target = target or "local"
    if target not in TARGETS:
        raise InvalidInput(
            "invalid_target", f"There is no target {target!r}. Choose one of: local, aws, gcp."
        )
    return target


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidInput(
            "invalid_deployment_name",
            "A deployment name is 1-64 letters, digits, '.', '_', ':' or '-', "
            "and starts with a letter or digit.",
        )
    return name


def slug(text: str) -> str:
    """A name-safe form of a model's name ("My tutor v2" -> "my-tutor-v2")."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip().lower()).strip("-._")
    return cleaned[:48] or "model"


def choose_name(wanted: str, default: str, taken: set[str]) -> str:
    """The name asked for (refused if taken), or the model's own name, made unique."""
    if wanted:
        check_name(wanted)
        if wanted in taken:
            raise InvalidInput(
                "deployment_name_taken",
                f"You already have a live deployment named {wanted!r}; stop it or pick "
                "another name.",
            )
        return wanted
    base = slug(default)
    if base not in taken:
        return base
    while True:
        candidate = f"{base}-{secrets.token_hex(2)}"
        if candidate not in taken:
            return candidate


def after_failed_start(*, was_ready_before: bool, failed_restarts: int, max_failed: int) -> str:
    """What a start that did not reach `ready` leads to.

    A first start that fails ends the deployment: a model that does not load will not load
    on the next try either, and retrying costs minutes. A server that was ready and died is
    restarted, until `max_failed` restarts in a row have failed.
    """
    if not was_ready_before:
        return FAILED
    return FAILED if failed_restarts >= max_failed else STARTING


def upstream_served_name(deployment_name: str) -> str:
    """The name the server answers to: the deployment's own, so responses (streamed ones
    included, passed through untouched) carry the name the caller used."""
    return deployment_name


def minutes_text(minutes: float) -> str:
    """ "30 idle minutes", "1 idle minute", "90 idle seconds" (tests use fractions)."""
    if minutes < 1:
        seconds = max(1, round(minutes * 60))
        return f"{seconds} idle second{'s' if seconds != 1 else ''}"
    whole = round(minutes) if math.isclose(minutes, round(minutes)) else minutes
    return f"{whole:g} idle minute{'s' if whole != 1 else ''}"


def cost_guard(*, target: str, idle_minutes: float, usd_per_hour: float) -> str:
    """The sentence the user sees next to a cloud deployment: when it stops by itself, and
    what it costs until then. Empty for local ones (they cost nothing by the hour)."""
    if target not in CLOUD_TARGETS:
        return ""
    stops = f"Stops by itself after {minutes_text(idle_minutes)}"
    if usd_per_hour <= 0:
        return stops + "."
    return f"{stops}; costs about ${usd_per_hour:.2f} an hour while running."


def idle_since(ready_at: datetime | None, last_used_at: datetime | None) -> datetime | None:
    """When the idle clock started: the last request, or becoming ready if none came since."""
    moments = [m for m in (ready_at, last_used_at) if m is not None]
    return max(moments) if moments else None


def is_idle(
    *, idle_minutes: float, ready_at: datetime | None, last_used_at: datetime | None,
    now: datetime,
) -> bool:  # fmt: skip
    since = idle_since(ready_at, last_used_at)
    if idle_minutes <= 0 or since is None:
        return False
    return now - since >= timedelta(minutes=idle_minutes)
