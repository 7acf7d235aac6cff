"""State changes of a deployment, each one conditional on the attempt the caller acts for.

The API process (requests, the health monitor) and the workers (starts, stops) all change
rows; every change names the attempt it belongs to, and a change for an attempt that is no
longer current is refused. So a stop that overtakes a start, or a monitor restart that
overtakes a worker, never lets the slower party overwrite the faster one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from services.common.db import session_scope
from services.common.timestamps import utcnow
from services.deployer.models import Deployment
from services.deployer.states import (
    FAILED,
    LIVE,
    PENDING,
    READY,
    STARTING,
    STOPPED,
    STOPPED_BY_USER,
    STOPPED_IDLE,
    STOPPING,
    after_failed_start,
    can_move,
)


def load(engine: Engine, deployment_id: str) -> Deployment | None:
    with session_scope(engine) as db:
        return db.get(Deployment, deployment_id)


def update(engine: Engine, deployment_id: str, attempt: int, **values: Any) -> bool:
    """Set `values` if the row is still at `attempt` (and the state change is allowed)."""
    with session_scope(engine) as db:
        row = db.get(Deployment, deployment_id, with_for_update=True)
        if row is None or row.attempt != attempt:
            return False
        new_state = values.get("state")
        if new_state is not None and new_state != row.state and not can_move(row.state, new_state):
            return False
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        db.add(row)
        return True


def restart(engine: Engine, deployment_id: str, attempt: int, reason: str) -> int | None:
    """A ready server stopped answering: start it again. Returns the new attempt, or None
    when something else (a stop, another restart) got there first."""
    with session_scope(engine) as db:
        row = db.get(Deployment, deployment_id, with_for_update=True)
        if row is None or row.attempt != attempt or row.state != READY:
            return None
        row.state = STARTING
        row.attempt += 1
        row.restarts += 1
        row.status_message = f"Restarting: {reason}"[:500]
        row.starting_at = row.updated_at = utcnow()
        db.add(row)
        return row.attempt


def start_failed(
    engine: Engine, deployment_id: str, attempt: int, code: str, reason: str, max_failed: int
) -> int | None:
    """A start did not reach `ready`. Returns the attempt to start next, or None when the
    deployment failed for good (or the attempt was no longer current)."""
    with session_scope(engine) as db:
        row = db.get(Deployment, deployment_id, with_for_update=True)
        if row is None or row.attempt != attempt or row.state != STARTING:
            return None
        was_ready = row.ready_at is not None
        failed_restarts = row.failed_restarts + (1 if was_ready else 0)
        now = utcnow()
        row.updated_at = now
        if (
            after_failed_start(
                was_ready_before=was_ready, failed_restarts=failed_restarts, max_failed=max_failed
            )
            == FAILED
        ):
            row.state = FAILED
            row.failure_code = code
            row.failure_reason = (
                reason
                if not was_ready
                else f"{failed_restarts} restarts in a row failed; the last: {reason}"
            )[:2000]
            row.status_message = ""
            row.failed_restarts = failed_restarts
            db.add(row)
            return None
        row.failed_restarts = failed_restarts
        row.attempt += 1
        row.restarts += 1
        row.status_message = f"Restarting after a failed start: {reason}"[:500]
        row.starting_at = now
        db.add(row)
        return row.attempt


def request_stop(
    engine: Engine, deployment_id: str, owner_id: str, reason: str = STOPPED_BY_USER
) -> Deployment | None:
    """Mark the owner's deployment `stopping` (a no-op once stopped). None: not theirs."""
    with session_scope(engine) as db:
        row = db.exec(
            select(Deployment)
            .where(Deployment.id == deployment_id, Deployment.owner_id == owner_id)
            .with_for_update()
        ).first()
        if row is None:
            return None
        if row.state in LIVE - {STOPPING} or row.state == FAILED:
            row.state = STOPPING
            row.attempt += 1  # whatever start is in flight gives up
            row.status_message = "Stopping the server"
            row.stop_reason = reason
            row.updated_at = utcnow()
            db.add(row)
        return row


def stop_idle(engine: Engine, deployment_id: str, attempt: int, message: str) -> bool:
    """The monitor found a ready cloud deployment unused for its idle time: stop it."""
    with session_scope(engine) as db:
        row = db.get(Deployment, deployment_id, with_for_update=True)
        if row is None or row.attempt != attempt or row.state != READY:
            return False
        row.state = STOPPING
        row.attempt += 1
        row.stop_reason = STOPPED_IDLE
        row.status_message = message[:500]
        row.updated_at = utcnow()
        db.add(row)
        return True


def touch(engine: Engine, deployment_id: str, owner_id: str) -> bool:
    """A request used the deployment: its idle clock starts again."""
    with session_scope(engine) as db:
        row = db.exec(
            select(Deployment).where(
                Deployment.id == deployment_id, Deployment.owner_id == owner_id
            )
        ).first()
        if row is None:
            return False
        row.last_used_at = utcnow()
        db.add(row)
        return True


def stopped(engine: Engine, deployment_id: str) -> bool:
    with session_scope(engine) as db:
        row = db.get(Deployment, deployment_id, with_for_update=True)
        if row is None or row.state != STOPPING:
            return False
        row.state = STOPPED
        row.status_message = ""
        row.processes = []
        row.stopped_at = row.updated_at = utcnow()
        db.add(row)
        return True


def live_on_credential(engine: Engine, owner_id: str, credential_id: str) -> Deployment | None:
    """One of the owner's live deployments (a stopping one too: its machine still has to be
    terminated) running on this stored credential, or None."""
    with session_scope(engine) as db:
        return db.exec(
            select(Deployment).where(
                Deployment.owner_id == owner_id,
                Deployment.credential_id == credential_id,
                Deployment.state.in_(LIVE),  # type: ignore[attr-defined]
            )
        ).first()


def watched(engine: Engine) -> list[Deployment]:
    """Every deployment the health monitor looks after, of every owner: a platform task,
    like the trainer's reaper, not a request on anyone's behalf."""
    with session_scope(engine) as db:
        statement = select(Deployment).where(
            Deployment.state.in_([PENDING, READY, STARTING, STOPPING])  # type: ignore[attr-defined]
        )
        return list(db.exec(statement).all())


def stale(row: Deployment, seconds: float) -> bool:
    return utcnow() - row.updated_at > timedelta(seconds=seconds)
