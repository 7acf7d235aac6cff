"""Fernet encryption for secrets at rest (cloud credentials, OAuth client secrets)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from services.common.errors import InvalidInput
from services.common.settings import BaseServiceSettings


def generate_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    def __init__(self, settings: BaseServiceSettings) -> None:
        key = settings.secret_key.get_secret_value()
        if not key:
            raise RuntimeError("FORGELINE_SECRET_KEY is not set; secrets cannot be stored")
        self._fernet = Fernet(key.encode())

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise InvalidInput(
                "secret_unreadable",
                "A stored secret could not be decrypted; was FORGELINE_SECRET_KEY changed?",
            ) from exc
