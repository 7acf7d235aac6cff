"""Redis pub/sub channel names shared between services (part of their contract)."""

# Auth publishes here whenever a credential stops being valid (logout, key revoked, user
# disabled, refresh-token reuse); gateways clear their token cache when a message arrives.
AUTH_REVOCATIONS = "forgeline:auth:revocations"
