from datetime import UTC, datetime, timedelta

from forgeline.v1 import auth_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.gateway.token_cache import TokenCache


def _principal(expires_in: timedelta | None) -> auth_pb2.Principal:
    principal = auth_pb2.Principal(user=auth_pb2.User(id="u1"), scopes=["user"])
    if expires_in is not None:
        stamp = Timestamp()
        stamp.FromDatetime(datetime.now(UTC) + expires_in)
        principal.expires_at.CopyFrom(stamp)
    return principal


def test_hit_miss_and_clear() -> None:
    cache = TokenCache(ttl_seconds=30)
    cache.put("token-a", _principal(timedelta(minutes=5)))
    assert cache.get("token-a").user.id == "u1"  # type: ignore[union-attr]
    assert cache.get("token-b") is None
    cache.clear()
    assert cache.get("token-a") is None


def test_an_expired_token_is_never_served_from_cache() -> None:
    cache = TokenCache(ttl_seconds=300)
    cache.put("old", _principal(timedelta(seconds=-1)))
    assert cache.get("old") is None


def test_api_keys_have_no_expiry_and_stay_until_ttl() -> None:
    cache = TokenCache(ttl_seconds=300)
    cache.put("flk_x_y", _principal(None))
    assert cache.get("flk_x_y") is not None


def test_zero_ttl_disables_caching() -> None:
    cache = TokenCache(ttl_seconds=0)
    cache.put("t", _principal(timedelta(minutes=5)))
    assert cache.get("t") is None
