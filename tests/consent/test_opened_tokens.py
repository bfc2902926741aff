"""The balances read reuses a consent's opened access token only while its sealed value and data
key read back exactly the same: a refreshed token, a value moved from another consent's row, a
tampered value, another key or a forgotten consent is opened anew, so what the read uses is
always what opening the row's sealed value gives (and a value that does not open still fails)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.service.broker import Broker
from consent.service.cache import TTLCache
from consent.store.last_known import Saved
from consent.vault.envelope import new_data_key, open_sealed, seal
from consent.vault.keyring import VaultError

CONSENTS = ("c1", "c2")
KEYS = {c: [new_data_key(), new_data_key()] for c in CONSENTS}  # a consent's key, and another


def _sealed(consent_id: str, version: int, key: bytes) -> bytes:
    return seal(
        key, f"token-{consent_id}-{version}".encode(), consent_id=consent_id, field="access_token"
    )


# every sealed value a read may find: each consent's token as first issued and as refreshed,
# under its own key and under the other key
SEALED = [_sealed(c, v, k) for c in CONSENTS for v in (1, 2) for k in KEYS[c]]


class Now:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


def _broker(clock: Now) -> Broker:
    broker = Broker.__new__(Broker)  # only the caches open_token and forget_consent use
    broker.clock = clock
    broker.handles = {}
    broker.parsed_rows = {}
    broker.saved_balances = Saved()
    broker.data_keys = TTLCache(timedelta(seconds=30), clock)
    broker.opened_tokens = TTLCache(timedelta(seconds=30), clock)
    return broker


def _expected(consent_id: str, key: bytes, sealed: bytes) -> str | None:
    try:
        return open_sealed(key, sealed, consent_id=consent_id, field="access_token").decode()
    except VaultError:
        return None


reads = st.tuples(
    st.sampled_from(CONSENTS),
    st.integers(min_value=0, max_value=1),  # which key the row's data key opens to
    st.integers(min_value=0, max_value=len(SEALED) - 1),  # which sealed value the row holds
    st.sampled_from(["read", "read", "read", "forget", "later", "tamper"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(reads, min_size=1, max_size=30))
def test_the_token_used_is_always_what_the_row_opens_to(
    steps: list[tuple[str, int, int, str]],
) -> None:
    clock = Now()
    broker = _broker(clock)
    for consent_id, key_index, sealed_index, what in steps:
        key, sealed = KEYS[consent_id][key_index], SEALED[sealed_index]
        if what == "forget":
            broker.forget_consent(consent_id)
            continue
        if what == "later":
            clock.at += timedelta(seconds=31)
            continue
        if what == "tamper":
            sealed = sealed[:-1] + bytes([sealed[-1] ^ 1])
        expected = _expected(consent_id, key, sealed)
        if expected is None:
            with pytest.raises(VaultError):
                broker.open_token(consent_id, key, sealed)
        else:
            assert broker.open_token(consent_id, key, sealed) == expected


def test_a_token_is_opened_once_while_the_row_reads_back_the_same() -> None:
    clock = Now()
    broker = _broker(clock)
    key = KEYS["c1"][0]
    first, refreshed = _sealed("c1", 1, key), _sealed("c1", 2, key)
    assert broker.open_token("c1", key, first) == "token-c1-1"
    assert broker.opened_tokens is not None
    cached = broker.opened_tokens.get("c1")
    assert cached == (first, key, "token-c1-1")
    assert broker.open_token("c1", key, first) == "token-c1-1"
    assert broker.open_token("c1", key, refreshed) == "token-c1-2"  # the refreshed token
    broker.forget_consent("c1")  # the consent ended: nothing of it stays
    assert broker.opened_tokens.get("c1") is None
    # a value moved from another consent's row does not open for this one, cached or not
    assert broker.open_token("c2", KEYS["c2"][0], _sealed("c2", 1, KEYS["c2"][0]))
    with pytest.raises(VaultError):
        broker.open_token("c1", KEYS["c2"][0], _sealed("c2", 1, KEYS["c2"][0]))
