"""The health monitor: one thread in the deployer's API process.

It lives there rather than in a worker because the API process is the one part that is
always up, exactly once: workers come and go (they are restarted after a crash, may run on
several machines, and can be busy for minutes starting a server), while a dead server must
be noticed whatever the workers are doing. The monitor only reads rows and asks `/health`;
restarts and stops are queued for a worker, which is also how they survive a monitor
restart. Each restart is claimed with a conditional update, so two monitors cannot both
restart one server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine

from services.common.errors import ForgelineError
from services.common.logging import get_logger
from services.common.timestamps import utcnow
from services.deployer import lifecycle
from services.deployer.cloud import Accounts, split_ref
from services.deployer.local import healthy
from services.deployer.models import Deployment
from services.deployer.settings import DeployerSettings
from services.deployer.states import PENDING, READY, STARTING, STOPPING, is_idle, minutes_text

log = get_logger(__name__)
# A start or stop whose row has not moved for this long lost its worker.
LOST_GRACE_SECONDS = 120.0


class HealthMonitor:
    def __init__(
        self,
        engine: Engine,
        settings: DeployerSettings,
        *,
        enqueue_start: Callable[[str, int], None],
        enqueue_stop: Callable[[str], None],
        probe: Callable[[str, int], bool] = healthy,
        accounts: Accounts | None = None,
        pending_starts: Callable[[], set[tuple[str, int]]] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.enqueue_start = enqueue_start
        self.enqueue_stop = enqueue_stop
        self.probe = probe
        self.accounts = accounts  # cloud targets; None: cloud deployments are not watched
        # The (deployment, attempt) of every start task the broker holds; None: not checked.
        self.pending_starts = pending_starts
        # Failed health checks in a row, per deployment and attempt.
        self.failures: dict[tuple[str, int], int] = {}

    def run(self, stopping: threading.Event) -> None:
        while not stopping.wait(self.settings.deployer_health_interval_seconds):
            try:
                self.check_once()
            except Exception:  # a database hiccup must not end the monitoring for good
                log.exception("health check pass failed")

    def check_once(self) -> None:
        rows = lifecycle.watched(self.engine)
        seen = set()
        waiting_long = []
        for row in rows:
            seen.add((row.id, row.attempt))
            if row.state == PENDING:
                if lifecycle.stale(row, LOST_GRACE_SECONDS):
                    waiting_long.append(row)
            elif row.state == READY:
                if not (row.is_cloud and self._stopped_idle(row)):
                    self._check_ready(row)
            elif row.state == STARTING:
                if row.is_cloud and row.compute_ref:
                    self._check_booting(row)
                else:
                    self._check_starting(row)
            elif row.state == STOPPING and lifecycle.stale(row, LOST_GRACE_SECONDS):
                lifecycle.update(self.engine, row.id, row.attempt)  # touch: retry once a grace
                self.enqueue_stop(row.id)
        self.failures = {k: v for k, v in self.failures.items() if k in seen}
        if waiting_long and self.pending_starts is not None:
            self._start_lost(waiting_long, self.pending_starts())

    def _start_lost(self, rows: list[Deployment], waiting: set[tuple[str, int]]) -> None:
        """Queue again the start of a pending deployment the broker no longer holds (Redis
        restarted without its data). Only then: a second start of one attempt would start a
        second server, so one still waiting behind other starts is left alone."""
        for row in rows:
            if (row.id, row.attempt) in waiting:
                continue
            log.warning("queueing again a start the broker lost", deployment_id=row.id)
            lifecycle.update(self.engine, row.id, row.attempt)  # touch: not again before a grace
            self.enqueue_start(row.id, row.attempt)

    def _check_ready(self, row: Deployment) -> None:
        key = (row.id, row.attempt)
        if self.probe(row.host, row.port):
            self.failures.pop(key, None)
            return
        count = self.failures[key] = self.failures.get(key, 0) + 1
        if count < self.settings.deployer_health_failures:
            return
        reason = f"the server failed {count} health checks in a row"
        attempt = lifecycle.restart(self.engine, row.id, row.attempt, reason)
        if attempt is not None:
            log.warning("restarting a deployment", deployment_id=row.id, reason=reason)
            self.enqueue_start(row.id, attempt)

    def _check_starting(self, row: Deployment) -> None:
        grace = self.settings.deployer_start_timeout_seconds + LOST_GRACE_SECONDS
        if not lifecycle.stale(row, grace):
            return
        attempt = lifecycle.start_failed(
            self.engine, row.id, row.attempt, "worker_lost",
            "The worker starting the server stopped before it was ready.",
            self.settings.deployer_max_failed_restarts,
        )  # fmt: skip
        if attempt is not None:
            self.enqueue_start(row.id, attempt)

    # --- cloud targets ------------------------------------------------------------------

    def _stopped_idle(self, row: Deployment) -> bool:
        """Stop a cloud deployment nobody used for its idle time (it costs by the hour)."""
        if not is_idle(
            idle_minutes=row.idle_minutes, ready_at=row.ready_at, last_used_at=row.last_used_at,
            now=utcnow(),
        ):  # fmt: skip
            return False
        message = f"Stopping: no request for {minutes_text(row.idle_minutes)}"
        if lifecycle.stop_idle(self.engine, row.id, row.attempt, message):
            log.info("stopping an idle deployment", deployment_id=row.id)
            self.enqueue_stop(row.id)
        return True

    def _check_booting(self, row: Deployment) -> None:
        """A cloud node is booting: ready once its vLLM answers /health; given up on (and
        terminated) when its machine stopped, or after the boot timeout."""
        if self.accounts is None:
            return
        _, instance = split_ref(row.compute_ref)
        try:
            api = self.accounts.api(row)
            host = row.host
            if not host:
                host = self.settings.deployer_cloud_host_override or api.address(instance)
                if host:
                    lifecycle.update(self.engine, row.id, row.attempt, host=host)
            if host and self.probe(host, row.port):
                if lifecycle.update(
                    self.engine, row.id, row.attempt,
                    state=READY, ready_at=utcnow(), failed_restarts=0, status_message="",
                    failure_code="", failure_reason="",
                ):  # fmt: skip
                    log.info("cloud deployment ready", deployment_id=row.id, ref=row.compute_ref)
                return
            limit = self.settings.deployer_cloud_boot_timeout_seconds
            started = row.starting_at or row.updated_at
            if (utcnow() - started).total_seconds() > limit:
                self._give_up(
                    row, "boot_timeout",
                    f"vLLM on the machine did not answer within {limit / 60:.0f} minutes; the "
                    "machine was terminated.",
                )  # fmt: skip
            elif api.state(instance) in ("stopped", "gone"):
                self._give_up(
                    row, "node_lost",
                    "The machine stopped before vLLM answered: installing vLLM or loading "
                    "the model failed on it.",
                )  # fmt: skip
        except ForgelineError as error:  # the cloud or the trainer is away: look again
            log.warning("could not check a booting node", deployment_id=row.id, code=error.code)

    def _give_up(self, row: Deployment, code: str, reason: str) -> None:
        assert self.accounts is not None
        self.accounts.terminate(row)
        log.warning("cloud deployment start failed", deployment_id=row.id, code=code)
        attempt = lifecycle.start_failed(
            self.engine, row.id, row.attempt, code, reason,
            self.settings.deployer_max_failed_restarts,
        )  # fmt: skip
        if attempt is not None:
            self.enqueue_start(row.id, attempt)
