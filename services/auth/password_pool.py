"""Argon2 on a pool of its own, with room for a bounded number of waiting sign-ins.

The gRPC server has one pool of threads for every call; token validation (every request the
gateway lets through) shares it with password sign-in and registration, which each spend an
argon2 hash (tens of milliseconds of CPU, by design). A flood of sign-ins would fill it and
stall everyone's requests. So the calls that hash run here instead: `workers` at once,
`queue` more waiting, and any beyond that are refused at once with `sign_in_busy` rather
than holding a server thread. The gateway's per-address throttle is the first line; this
one holds when the flood comes from many addresses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from services.common.errors import RateLimited

T = TypeVar("T")


class PasswordPool:
    def __init__(self, *, workers: int, queue: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._admitted = threading.BoundedSemaphore(workers + queue)

    def run(self, call: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        if not self._admitted.acquire(blocking=False):
            raise RateLimited(
                "sign_in_busy",
                "Forgeline is handling many sign-ins right now. Try again in a few seconds.",
                retry_after=2,
            )
        try:
            return self._executor.submit(call, *args, **kwargs).result()
        finally:
            self._admitted.release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
