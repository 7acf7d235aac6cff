import pytest

from services.auth.passwords import check_policy, hash_password, verify_password
from services.common.errors import InvalidInput


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("short", "at least 12"),
        ("x" * 129, "at most 128"),
        ("password1234", "too easy"),
        ("abababababababab", "too easy"),
        ("my-adalovelace-pass", "email name"),
    ],
)
def test_policy_refusals(password: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as error:
        check_policy(password, email="adalovelace@example.com")
    assert error.value.code == "weak_password"
    assert fragment in error.value.message


def test_policy_accepts_a_passphrase() -> None:
    check_policy("purple tractor sings loudly", email="ada@example.com")


def test_argon2id_hash_and_verify() -> None:
    hashed = hash_password("purple tractor sings loudly")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "purple tractor sings loudly")
    assert not verify_password(hashed, "purple tractor sings quietly")
    assert not verify_password(None, "anything at all")  # the unknown-account path
    assert not verify_password("not a hash", "anything at all")
