"""Where the running broker gets its key ring: fixed from settings, or a key file that is
re-read when it changes, so a rotation done by ``chatbank keys rotate`` is picked up without a
restart and reads keep working while keys are being re-wrapped."""

from __future__ import annotations

import os
from pathlib import Path

from consent.vault.keyring import KeyRing, create_keyring_file, load_keyring_file, parse_keyring


class KeySource:
    def __init__(self, *, spec: str = "", path: Path | None = None) -> None:
        if not spec and path is None:
            raise ValueError("a key ring spec or a key file is required")
        self._fixed = parse_keyring(spec) if spec else None
        self._path = path
        self._mtime: float | None = None
        self._ring: KeyRing | None = self._fixed

    @property
    def ring(self) -> KeyRing:
        if self._fixed is not None:
            return self._fixed
        assert self._path is not None
        if not self._path.exists():
            self._ring = create_keyring_file(self._path)
        mtime = self._path.stat().st_mtime
        if self._ring is None or mtime != self._mtime:
            self._ring, self._mtime = load_keyring_file(self._path), mtime
        return self._ring

    def rotate(self) -> KeyRing:
        """Add a new current KEK to the key file (atomically); older versions stay readable."""
        return self.replace(self.ring.with_new_key())

    def replace(self, ring: KeyRing) -> KeyRing:
        """Write ``ring`` to the key file atomically (owner-only), e.g. after a rotation or with
        retired versions dropped."""
        if self._path is None:
            raise ValueError("this writes the key file; this ring comes from settings")
        tmp = self._path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(ring.spec() + "\n")
        tmp.replace(self._path)
        self._ring, self._mtime = ring, self._path.stat().st_mtime
        return ring
