"""The secret key rotates: what the old key encrypted still reads, and re-encrypts."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from services.common.crypto import SecretBox
from services.common.errors import InvalidInput
from services.common.settings import BaseServiceSettings


def _box(key: str, previous: str = "") -> SecretBox:
    return SecretBox(BaseServiceSettings(secret_key=key, previous_secret_keys=previous))


def test_a_rotated_key_still_reads_what_the_old_one_wrote() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored = _box(old).encrypt("cloud secret")
    rotated_box = _box(new, previous=old)
    assert rotated_box.decrypt(stored) == "cloud secret"
    rewritten = rotated_box.rotate(stored)
    # Re-encrypted with the new key: readable once the old one is dropped.
    assert _box(new).decrypt(rewritten) == "cloud secret"


def test_a_lost_key_is_said_with_its_code_and_what_to_do() -> None:
    stored = _box(Fernet.generate_key().decode()).encrypt("cloud secret")
    with pytest.raises(InvalidInput) as lost:
        _box(Fernet.generate_key().decode()).decrypt(stored)
    assert lost.value.code == "secret_unreadable"
    assert "FORGELINE_PREVIOUS_SECRET_KEYS" in lost.value.message
