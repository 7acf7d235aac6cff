"""The key each vLLM server of a deployment answers to, local or cloud.

Only the platform holds it (encrypted in the deployment's row; ResolveModel hands it to the
gateway, which sends it as a bearer token): users call `/v1` with their own API keys. A
local server listens on loopback, which every process of the machine can reach, so it needs
one as much as a cloud node on a public address does.
"""

from __future__ import annotations

import secrets


def new_api_key() -> str:
    return "fl-node-" + secrets.token_urlsafe(32)
