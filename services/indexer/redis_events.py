"""Event source: MinIO's Redis notification target in access format, which RPUSHes one JSON
array per bucket event onto a list (see the MinIO notes in events.py)."""

from __future__ import annotations

import threading
from typing import cast

import redis

from services.common.logging import get_logger
from services.indexer.consumers import Apply
from services.indexer.events import EventParseError, parse_minio_event

log = get_logger(__name__)


class RedisListConsumer(threading.Thread):
    """Reads the list as a reliable queue: each item is moved atomically to `KEY:processing`
    and removed from there only once its events are recorded, or once it proves unreadable.
    A crash or a failed `apply` therefore leaves the item where the next pass finds it; at
    worst an event is applied twice, which the indexer's idempotent intake absorbs."""

    def __init__(
        self,
        url: str,
        key: str,
        apply: Apply,
        *,
        block_seconds: int = 1,
        retry_seconds: float = 1.0,
        max_retry_seconds: float = 30.0,
    ) -> None:
        super().__init__(name="minio-redis-consumer", daemon=True)
        self.key = key
        self.processing = f"{key}:processing"
        self.apply = apply
        # BLMOVE's short timeout is what lets `stopping` end the thread promptly; the socket
        # timeout must outlast it or every idle wait would read as a dead connection.
        self.block_seconds = block_seconds
        self.redis = redis.Redis.from_url(
            url, socket_timeout=block_seconds + 5, socket_connect_timeout=2
        )
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.stopping = threading.Event()

    def run(self) -> None:
        failures = 0
        # Leftovers first: a crashed consumer's items on start, and after any failure the item
        # that failed, so it is retried before anything newer is taken.
        sweep = True
        while not self.stopping.is_set():
            try:
                if sweep:
                    leftovers = cast(list[bytes], self.redis.lrange(self.processing, 0, -1))
                    for item in leftovers:
                        if self.stopping.is_set() or not self._handle(item):
                            break
                    else:
                        sweep = False
                else:
                    moved = self.redis.blmove(
                        self.key, self.processing, self.block_seconds, "LEFT", "RIGHT"
                    )
                    if moved is not None and not self._handle(cast(bytes, moved)):
                        sweep = True
                if not sweep:
                    failures = 0
                    continue
            except redis.RedisError as error:
                # The item in flight (if any) may be stranded in the processing list: sweep it.
                sweep = True
                log.warning("redis event list unreachable; retrying", error=str(error))
            if self.stopping.is_set():
                break
            # Back off, doubling, so an outage of the database or Redis is not hammered.
            failures += 1
            self.stopping.wait(
                min(self.retry_seconds * 2 ** (failures - 1), self.max_retry_seconds)
            )

    def _handle(self, item: bytes) -> bool:
        """False when the events could not be recorded: the item stays for a retry."""
        try:
            events = parse_minio_event(item)
        except EventParseError as error:
            # Retrying could never succeed (a field of the wrong type is one too): drop it
            # rather than block the queue.
            log.warning(
                "unreadable redis bucket event dropped", list_key=self.key, error=str(error)
            )
        else:
            try:
                self.apply(events)
            except Exception:
                log.exception("could not record bucket events; the item will be retried")
                return False
        # Bytes on purpose (redis-py's stub says str): a non-UTF-8 item must still be removable.
        self.redis.lrem(self.processing, 1, item)  # type: ignore[arg-type]
        return True
