"""Envelope encryption of the secrets the database holds (pure: no I/O but randomness).

A value is sealed under a fresh 256-bit data key (AES-256-GCM), and the data key is wrapped
under the instance's key-encryption key (AES-256-GCM again), named by its key id. The purpose
(``"users.totp_secret"``, ``"cameras.url"``…) is bound as associated data, so a sealed value
copied into another column does not open there. Stored form, one line of ASCII::

    vs1:<kid>:<base64 nonce‖wrapped data key>:<base64 nonce‖ciphertext‖tag>

A value without the prefix is one written before secrets were sealed: it is read as it is
and sealed by the next pass (varta/secrets/vault.py ``seal_all``).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "vs1:"
KEY_BYTES = 32


class SecretsError(Exception):
    """A secret cannot be sealed or opened; the message says what to do."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def key_id(key: bytes) -> str:
    """A short public name of a key (not a hash of the key alone: it is salted)."""
    return hashlib.sha256(b"varta secrets key id\0" + key).hexdigest()[:16]


def is_sealed(value: str | None) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def kid_of(value: str | None) -> str | None:
    if not is_sealed(value):
        return None
    parts = value.split(":")
    return parts[1] if len(parts) == 4 else None


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


@dataclass
class Keyring:
    """The keys a process holds, by id, and the one new values are sealed with."""

    keys: dict[str, bytes] = field(default_factory=dict)
    current: str | None = None

    @classmethod
    def of(cls, *keys: bytes) -> "Keyring":
        ring = cls()
        for k in keys:
            ring.add(k)
        ring.current = key_id(keys[0]) if keys else None
        return ring

    def add(self, key: bytes) -> str:
        if len(key) != KEY_BYTES:
            raise SecretsError(f"a secrets key is {KEY_BYTES} bytes, not {len(key)}")
        kid = key_id(key)
        self.keys[kid] = key
        return kid

    def seal(self, plaintext: str | None, purpose: str) -> str | None:
        if plaintext is None:
            return None
        if self.current is None or self.current not in self.keys:
            raise SecretsError("no secrets key is held here, so nothing secret can be stored: start a node "
                               "(it makes or receives the key) or set VARTA_SECRETS_KEY")
        kek = self.keys[self.current]
        dek = AESGCM.generate_key(bit_length=256)
        n1, n2 = os.urandom(12), os.urandom(12)
        body = AESGCM(dek).encrypt(n1, plaintext.encode(), purpose.encode())
        wrapped = AESGCM(kek).encrypt(n2, dek, b"varta dek\0" + self.current.encode())
        return f"{PREFIX}{self.current}:{_b64(n2 + wrapped)}:{_b64(n1 + body)}"

    def open(self, value: str | None, purpose: str) -> str | None:
        if value is None or not is_sealed(value):
            return value  # written before sealing (sealed by the next pass) or empty
        try:
            _, kid, wrapped, body = value.split(":")
            wrapped_b, body_b = base64.b64decode(wrapped), base64.b64decode(body)
        except ValueError:
            raise SecretsError(f"a sealed {purpose} value is damaged (not in the vs1 form)") from None
        kek = self.keys.get(kid)
        if kek is None:
            raise SecretsError(f"{purpose} is sealed with secrets key {kid}, which this process does not hold "
                               "(a database copied without its keys, or a key that has not reached this node yet)")
        try:
            dek = AESGCM(kek).decrypt(wrapped_b[:12], wrapped_b[12:], b"varta dek\0" + kid.encode())
            return AESGCM(dek).decrypt(body_b[:12], body_b[12:], purpose.encode()).decode()
        except (InvalidTag, ValueError):
            raise SecretsError(f"a sealed {purpose} value does not open with key {kid}: it was altered or "
                               "belongs elsewhere") from None
