"""Where every bucket event ends up: record it, then queue a sync of the key.

Recording first means the document is listed (as `pending`, or gone) at once; the sync task
then makes the index match the bucket. Both steps are idempotent, so duplicated or reordered
events only cost a check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from services.indexer.events import BucketEvent
from services.indexer.keys import parse_key
from services.indexer.sync import Syncer

Enqueue = Callable[[str, str], object]


def apply_events(syncer: Syncer, events: Iterable[BucketEvent], enqueue: Enqueue) -> int:
    """Returns how many events concerned a knowledge base (others are ignored)."""
    handled = 0
    for event in events:
        ref = parse_key(event.bucket, event.key)
        if ref is None:
            continue
        if event.kind == "put":
            syncer.mark_pending(ref, etag=event.etag or "", size=event.size or 0)
        enqueue(event.bucket, event.key)
        handled += 1
    return handled
