"""Versioned key-encryption keys (KEKs): from settings (``"1:<base64>,2:<base64>"``) or a file."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from pathlib import Path

KEK_BYTES = 32


class VaultError(Exception):
    """Something could not be sealed, opened, wrapped or unwrapped (never says which part)."""


def generate_kek() -> bytes:
    return os.urandom(KEK_BYTES)


@dataclass(frozen=True)
class KeyRing:
    keys: dict[int, bytes] = field(repr=False)
    current: int

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise VaultError("the current KEK version is not in the key ring")
        if any(len(k) != KEK_BYTES for k in self.keys.values()):
            raise VaultError("every KEK must be 32 bytes")

    def key(self, version: int) -> bytes:
        try:
            return self.keys[version]
        except KeyError as e:
            raise VaultError("unknown KEK version") from e

    def with_new_key(self, kek: bytes | None = None) -> KeyRing:
        """A ring with a new current KEK; older versions stay readable until re-wrapped."""
        version = max(self.keys) + 1
        return KeyRing({**self.keys, version: kek or generate_kek()}, version)

    def without(self, versions: set[int]) -> KeyRing:
        """A ring with these versions dropped; the current one can never be dropped."""
        if self.current in versions:
            raise VaultError("the current KEK version cannot be retired")
        return KeyRing({v: k for v, k in self.keys.items() if v not in versions}, self.current)

    def spec(self) -> str:
        """The ring in settings format (store it as a secret)."""
        return ",".join(f"{v}:{base64.b64encode(k).decode()}" for v, k in sorted(self.keys.items()))


def parse_keyring(spec: str, current: int | None = None) -> KeyRing:
    """Parse ``"1:<base64>,2:<base64>"``; the highest version is current unless given."""
    keys: dict[int, bytes] = {}
    for part in spec.split(","):
        version_s, sep, b64 = part.strip().partition(":")
        if not sep or not version_s.isdigit():
            raise VaultError("key ring entries look like '<version>:<base64 key>'")
        try:
            keys[int(version_s)] = base64.b64decode(b64, validate=True)
        except binascii.Error as e:
            raise VaultError("a KEK is not valid base64") from e
    if not keys:
        raise VaultError("the key ring is empty")
    return KeyRing(keys, current if current is not None else max(keys))


def load_keyring_file(path: Path) -> KeyRing:
    return parse_keyring(path.read_text(encoding="utf-8").strip())


def create_keyring_file(path: Path) -> KeyRing:
    """Write a new one-key ring readable by the owner only (first run of ``chatbank up``)."""
    ring = KeyRing({1: generate_kek()}, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(ring.spec() + "\n")
    return ring
