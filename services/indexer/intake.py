"""Where every bucket event ends up: record it, then queue a sync of the key.

Recording first means the document is listed (as `pending`, or gone) at once; the sync task
then makes the index match the bucket. Both steps are idempotent, so duplicated or reordered
events only cost a check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from services.indexer.events import BucketEvent
from services.indexer.keys import ObjectRef
from services.indexer.reconcile import Enqueue
from services.indexer.sync import Syncer

# bucket, key -> the knowledge bases the object belongs to (KnowledgeBaseDirectory.refs_for)
Resolve = Callable[[str, str], list[ObjectRef]]


def apply_events(
    syncer: Syncer, events: Iterable[BucketEvent], resolve: Resolve, enqueue: Enqueue
) -> int:
    """Returns how many (event, knowledge base) pairs were queued; other objects are ignored."""
    handled = 0
    for event in events:
        for ref in resolve(event.bucket, event.key):
            if event.kind == "put":
                syncer.mark_pending(ref, etag=event.etag or "", size=event.size or 0)
            enqueue(event.bucket, event.key, ref.kb_id)
            handled += 1
    return handled
