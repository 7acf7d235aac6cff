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

from services.common.logging import get_logger
from services.deployer import lifecycle
from services.deployer.local import healthy
from services.deployer.models import Deployment
from services.deployer.settings import DeployerSettings
from services.deployer.states import READY, STARTING, STOPPING

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
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.enqueue_start = enqueue_start
        self.enqueue_stop = enqueue_stop
        self.probe = probe
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
        for row in rows:
            seen.add((row.id, row.attempt))
            if row.state == READY:
                self._check_ready(row)
            elif row.state == STARTING:
                self._check_starting(row)
            elif row.state == STOPPING and lifecycle.stale(row, LOST_GRACE_SECONDS):
                lifecycle.update(self.engine, row.id, row.attempt)  # touch: retry once a grace
                self.enqueue_stop(row.id)
        self.failures = {k: v for k, v in self.failures.items() if k in seen}

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
