"""The redaction filter: no amount, account or card number, IBAN, token or key in any log line."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank_mock.app import create_app as create_bank
from bank_mock.keys import BANKS
from bank_mock.settings import BankSettings
from bot import redact
from tests.consent.test_broker_flows import _raw_values


@pytest.fixture(autouse=True)
def _installed() -> None:
    redact.install()


def test_typical_values_are_masked() -> None:
    for text in (
        "GB29NWBK60161331926819",
        "GB29 NWBK 6016 1331 9268 19",
        "PL61109010140000071219812874",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "sort code 60-16-13",
        "paid 1,234.56",
        "£12.30",
        "1 234,56 zł",
        "GBP 250",
        "Bearer abc.def-ghi",
        "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
        "secret=hunter2",
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        "jane.doe@example.com",
        "10.1.2.3",
    ):
        masked = redact.redact(text)
        assert redact.MASK in masked, text
        assert not any(part in masked for part in ("1111", "6016", "2.30", "hunter2", "AAHdq"))


@given(
    st.integers(min_value=0, max_value=10**7),
    st.integers(min_value=0, max_value=99),
    st.sampled_from(["", "£", "$", "€", "GBP ", "PLN "]),
)
def test_any_amount_with_pence_is_masked(whole: int, cents: int, sign: str) -> None:
    amount = f"{sign}{whole:,}.{cents:02d}"
    assert f"{whole:,}.{cents:02d}" not in redact.redact(f"spent {amount} today")


@given(st.text(alphabet="0123456789", min_size=4, max_size=19))
def test_any_run_of_four_or_more_digits_is_masked(digits: str) -> None:
    assert digits not in redact.redact(f"account {digits} here")


def test_every_record_is_redacted_whatever_the_logger_or_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("telegram.ext.Application").info(
        "sent %s to %s", "£1,234.56", 4111111111111111
    )
    try:
        raise ValueError("card 4111111111111111 declined")
    except ValueError:
        logging.getLogger("bot.handlers").exception("failed for account %s", "12345678")
    text = caplog.text
    assert "1,234.56" not in text and "4111111111111111" not in text and "12345678" not in text
    assert "declined" in text  # the words stay, only the values go


async def test_no_raw_field_of_a_real_bank_record_survives(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_bank(BankSettings(customers_per_bank=2))
    client = await aiohttp_client(app)
    account = app[BANKS]["wisla"].customers_by_username["demo1"].account_ids[0]
    raw = await (await client.get(f"/sandbox/banks/wisla/raw/accounts/{account}")).json()
    values = {v for v in _raw_values(raw) if any(c.isdigit() for c in v)}
    assert values
    caplog.set_level(logging.INFO)
    log = logging.getLogger("bot.test")
    for value in sorted(values):
        log.info("value %s seen", value)
    leaked = [v for v in values if v in caplog.text]
    assert leaked == []
