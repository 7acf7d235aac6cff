"""Argon2's own pool: a flood beyond its room is refused at once, never queued on the
server's threads."""

from __future__ import annotations

import threading

import pytest

from services.auth.password_pool import PasswordPool
from services.common.errors import RateLimited


def test_calls_beyond_the_workers_and_the_queue_are_refused_at_once() -> None:
    pool = PasswordPool(workers=1, queue=1)
    release = threading.Event()
    started = threading.Event()

    def slow_hash() -> str:
        started.set()
        release.wait(10)
        return "hashed"

    results: list[str] = []
    running = threading.Thread(target=lambda: results.append(pool.run(slow_hash)))
    waiting = threading.Thread(target=lambda: results.append(pool.run(lambda: "queued")))
    running.start()
    assert started.wait(5)
    waiting.start()
    waiting.join(0.5)  # it takes the one waiting place (and stays blocked on the hash)
    assert waiting.is_alive()
    # One hashing, one waiting: the third is turned away without waiting for either.
    with pytest.raises(RateLimited) as refused:
        pool.run(lambda: "third")
    assert refused.value.code == "sign_in_busy" and refused.value.retry_after
    release.set()
    running.join(5)
    waiting.join(5)
    assert sorted(results) == ["hashed", "queued"]
    # Room again once they are done.
    assert pool.run(lambda: "later") == "later"
    pool.shutdown()


def test_errors_reach_the_caller_and_free_the_room() -> None:
    pool = PasswordPool(workers=1, queue=0)

    def wrong() -> None:
        raise ValueError("bad password")

    for _ in range(3):
        with pytest.raises(ValueError, match="bad password"):
            pool.run(wrong)
    pool.shutdown()
