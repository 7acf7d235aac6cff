"""Which knowledge base an object belongs to, from its key.

In the platform's bucket every knowledge-base object lives at
`<owner id>/kbs/<knowledge base id>/<file name>`; anything else (datasets, models, ...) is
not ours to index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_KB_KEY = re.compile(r"^(?P<owner>[0-9a-f]{32})/kbs/(?P<kb>[0-9a-f]{32})/(?P<name>[^/].*)$")


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    owner_id: str
    kb_id: str

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def kb_prefix(owner_id: str, kb_id: str) -> str:
    return f"{owner_id}/kbs/{kb_id}/"


def parse_key(bucket: str, key: str) -> ObjectRef | None:
    match = _KB_KEY.match(key)
    if match is None or match["name"].endswith("/"):
        return None
    return ObjectRef(bucket=bucket, key=key, owner_id=match["owner"], kb_id=match["kb"])
