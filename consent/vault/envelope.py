"""AES-256-GCM envelope encryption with associated data binding every ciphertext to its consent
and field, so a ciphertext moved to another row or column fails to open."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from consent.vault.keyring import KeyRing, VaultError

_VERSION = b"\x01"
_NONCE = 12


@dataclass(frozen=True, slots=True)
class WrappedKey:
    kek_version: int
    blob: bytes


def new_data_key() -> bytes:
    """A fresh random 256-bit data key for one consent."""
    return AESGCM.generate_key(bit_length=256)


def _aad(kind: str, consent_id: str, field: str = "") -> bytes:
    return f"chatbank/v1|{kind}|{consent_id}|{field}".encode()


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < 1 + _NONCE + 16 or blob[:1] != _VERSION:
        raise VaultError("cannot open")
    try:
        return AESGCM(key).decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], aad)
    except (InvalidTag, ValueError) as e:
        raise VaultError("cannot open") from e


def wrap_key(ring: KeyRing, data_key: bytes, consent_id: str) -> WrappedKey:
    """Encrypt a consent's data key under the current KEK."""
    return WrappedKey(
        ring.current, _encrypt(ring.key(ring.current), data_key, _aad("dek", consent_id))
    )


def unwrap_key(ring: KeyRing, wrapped: WrappedKey, consent_id: str) -> bytes:
    """The consent's data key; ``VaultError`` for another consent's key or a tampered blob."""
    return _decrypt(ring.key(wrapped.kek_version), wrapped.blob, _aad("dek", consent_id))


def rewrap(ring: KeyRing, wrapped: WrappedKey, consent_id: str) -> WrappedKey:
    """Re-wrap under the current KEK (key rotation); ciphertexts sealed with the data key stay."""
    if wrapped.kek_version == ring.current:
        return wrapped
    return wrap_key(ring, unwrap_key(ring, wrapped, consent_id), consent_id)


def seal(data_key: bytes, plaintext: bytes, *, consent_id: str, field: str) -> bytes:
    """Encrypt one field value of one consent."""
    return _encrypt(data_key, plaintext, _aad("field", consent_id, field))


def open_sealed(data_key: bytes, blob: bytes, *, consent_id: str, field: str) -> bytes:
    """Decrypt what :func:`seal` produced for the same consent and field."""
    return _decrypt(data_key, blob, _aad("field", consent_id, field))
