"""Envelope encryption: round trips, binding to consent and field, rotation, shredding."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.vault.envelope import new_data_key, open_sealed, rewrap, seal, unwrap_key, wrap_key
from consent.vault.keyring import KeyRing, VaultError, generate_kek, parse_keyring

RING = KeyRing({1: generate_kek()}, 1)
ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=40)
field_names = st.sampled_from(["access_token", "refresh_token", "pkce_verifier", "account_id"])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048), ids, field_names)
def test_open_of_seal_is_the_identity(plaintext: bytes, consent_id: str, field: str) -> None:
    key = new_data_key()
    assert (
        open_sealed(
            key,
            seal(key, plaintext, consent_id=consent_id, field=field),
            consent_id=consent_id,
            field=field,
        )
        == plaintext
    )


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=256), ids, ids, field_names, field_names)
def test_a_ciphertext_moved_to_another_consent_or_field_does_not_open(
    plaintext: bytes, consent_a: str, consent_b: str, field_a: str, field_b: str
) -> None:
    key = new_data_key()
    blob = seal(key, plaintext, consent_id=consent_a, field=field_a)
    if (consent_a, field_a) != (consent_b, field_b):
        with pytest.raises(VaultError):
            open_sealed(key, blob, consent_id=consent_b, field=field_b)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.data())
def test_flipping_any_byte_of_a_ciphertext_is_detected(
    plaintext: bytes, data: st.DataObject
) -> None:
    key = new_data_key()
    blob = bytearray(seal(key, plaintext, consent_id="c1", field="access_token"))
    i = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    blob[i] ^= data.draw(st.integers(min_value=1, max_value=255))
    with pytest.raises(VaultError):
        open_sealed(key, bytes(blob), consent_id="c1", field="access_token")


@settings(max_examples=100, deadline=None)
@given(ids, ids)
def test_a_wrapped_data_key_unwraps_only_for_its_own_consent(
    consent_a: str, consent_b: str
) -> None:
    key = new_data_key()
    wrapped = wrap_key(RING, key, consent_a)
    assert unwrap_key(RING, wrapped, consent_a) == key
    if consent_a != consent_b:
        with pytest.raises(VaultError):
            unwrap_key(RING, wrapped, consent_b)


def test_rotation_rewraps_data_keys_and_old_ciphertexts_still_open() -> None:
    key = new_data_key()
    old = wrap_key(RING, key, "c1")
    sealed = seal(key, b"bank-access-token", consent_id="c1", field="access_token")
    rotated_ring = RING.with_new_key()
    # during rotation both versions are in the ring: not-yet-rewrapped keys still open
    assert unwrap_key(rotated_ring, old, "c1") == key
    new = rewrap(rotated_ring, old, "c1")
    assert new.kek_version == 2
    assert rewrap(rotated_ring, new, "c1") is new
    after = KeyRing({2: rotated_ring.keys[2]}, 2)  # the old KEK retired once every key is rewrapped
    assert (
        open_sealed(unwrap_key(after, new, "c1"), sealed, consent_id="c1", field="access_token")
        == b"bank-access-token"
    )
    with pytest.raises(VaultError):
        unwrap_key(after, old, "c1")


def test_shredding_the_data_key_makes_sealed_tokens_unrecoverable() -> None:
    key = new_data_key()
    wrapped = wrap_key(RING, key, "c1")
    sealed = seal(key, b"refresh-token", consent_id="c1", field="refresh_token")
    del key, wrapped  # what revocation does to the stored wrapped key
    for guess in (new_data_key(), RING.keys[1], bytes(32)):
        with pytest.raises(VaultError):
            open_sealed(guess, sealed, consent_id="c1", field="refresh_token")


def test_key_rings_parse_from_settings_and_refuse_bad_input() -> None:
    ring = RING.with_new_key()
    parsed = parse_keyring(ring.spec())
    assert parsed.current == 2
    assert parsed.keys == ring.keys
    assert parse_keyring(ring.spec(), current=1).current == 1
    for bad in ("", "x:abc", "1:not-base64!!", "1:" + "QUFB"):
        with pytest.raises(VaultError):
            parse_keyring(bad)
    secret = ring.spec().split(",")[0].split(":")[1]
    assert secret not in repr(ring)  # keys never show in logs or tracebacks


def test_a_key_file_rotation_is_seen_by_a_running_reader(tmp_path: Path) -> None:
    from consent.vault.source import KeySource

    path = tmp_path / "kek"
    reader = KeySource(path=path)
    first = reader.ring
    assert path.stat().st_mode & 0o777 == 0o600
    wrapped = wrap_key(first, b"k" * 32, "c1")
    writer = KeySource(path=path)
    rotated = writer.rotate()
    assert rotated.current == 2
    import os

    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))  # mtime granularity
    assert reader.ring.current == 2  # re-read without a restart
    assert unwrap_key(reader.ring, wrapped, "c1") == b"k" * 32  # old wraps still open mid-rotation
