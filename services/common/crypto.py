"""Fernet encryption for secrets at rest (cloud credentials, OAuth client secrets, node keys).

Keys rotate: `FORGELINE_SECRET_KEY` encrypts, and it or any of
`FORGELINE_PREVIOUS_SECRET_KEYS` decrypts (MultiFernet), so an operator replaces the key
without losing what the old one protects, and `rotate` re-encrypts a value with the new one.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from services.common.errors import InvalidInput
from services.common.settings import BaseServiceSettings

SECRET_UNREADABLE = "secret_unreadable"  # noqa: S105 (an error code, not a secret)


def generate_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    def __init__(self, settings: BaseServiceSettings) -> None:
        key = settings.secret_key.get_secret_value()
        if not key:
            raise RuntimeError("FORGELINE_SECRET_KEY is not set; secrets cannot be stored")
        previous = settings.previous_secret_keys.get_secret_value().replace(",", " ").split()
        self._fernet = MultiFernet([Fernet(k.encode()) for k in (key, *previous)])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise _unreadable() from exc

    def rotate(self, ciphertext: str) -> str:
        """The same secret, encrypted with the current key."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise _unreadable() from exc


def _unreadable() -> InvalidInput:
    return InvalidInput(
        SECRET_UNREADABLE,
        "A stored secret could not be decrypted: FORGELINE_SECRET_KEY was changed without "
        "keeping the old key in FORGELINE_PREVIOUS_SECRET_KEYS.",
    )
