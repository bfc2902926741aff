"""The seeded generator: deterministic, valid identifiers, realistic and complete histories."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, replace
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bank_mock import identifiers as ids
from bank_mock.auth import approval
from bank_mock.generate import build_banks
from bank_mock.models import (
    AccountKind,
    Consent,
    ConsentStatus,
    Direction,
    Transaction,
    TxStatus,
)
from bank_mock.notify import NullSink
from bank_mock.settings import BankSettings
from bank_mock.state import BankState

TODAY = date(2026, 11, 20)


def test_the_same_seed_yields_the_same_people_accounts_and_histories() -> None:
    a = build_banks(BankSettings(seed=7, customers_per_bank=3, anchor_date=TODAY))
    b = build_banks(BankSettings(seed=7, customers_per_bank=3, anchor_date=TODAY))
    for bank_id in a:
        assert [asdict(c) for c in a[bank_id].customers.values()] == [
            asdict(c) for c in b[bank_id].customers.values()
        ]
        for account_id in a[bank_id].accounts:
            assert (
                a[bank_id].ledger(account_id).transactions
                == b[bank_id].ledger(account_id).transactions
            )


def test_histories_do_not_depend_on_the_order_accounts_are_read() -> None:
    a = build_banks(BankSettings(seed=7, customers_per_bank=2, anchor_date=TODAY))["wisla"]
    b = build_banks(BankSettings(seed=7, customers_per_bank=2, anchor_date=TODAY))["wisla"]
    first, *_, last = list(a.accounts)
    a.ledger(first)
    assert a.ledger(last).transactions == b.ledger(last).transactions


def test_a_different_seed_yields_different_data() -> None:
    a = build_banks(BankSettings(seed=1, customers_per_bank=2, anchor_date=TODAY))["northwind"]
    b = build_banks(BankSettings(seed=2, customers_per_bank=2, anchor_date=TODAY))["northwind"]
    assert [c.full_name for c in a.customers.values()] != [
        c.full_name for c in b.customers.values()
    ]


def test_there_are_four_banks_with_distinct_names_and_currencies() -> None:
    banks = build_banks(BankSettings(customers_per_bank=1, anchor_date=TODAY))
    assert {b.profile.currency for b in banks.values()} == {"GBP", "USD", "PLN", "SAR"}
    assert len({b.profile.name for b in banks.values()}) == 4


def test_account_identifiers_are_valid_for_each_scheme() -> None:
    banks = build_banks(BankSettings(customers_per_bank=5, anchor_date=TODAY))
    for bank in banks.values():
        for account in bank.accounts.values():
            if account.iban:
                assert ids.iban_valid(account.iban), account.iban
            if bank.profile.country == "US":
                assert account.sort_code is not None and ids.aba_valid(account.sort_code)
            if bank.profile.country == "GB":
                assert account.sort_code is not None and len(account.sort_code) == 6
                assert len(account.account_number) == 8
        for card in bank.cards.values():
            assert ids.luhn_valid(card.pan) and len(card.pan) == 16


def test_histories_cover_a_year_with_pending_foreign_and_refund_activity() -> None:
    bank = build_banks(BankSettings(customers_per_bank=4, anchor_date=TODAY))["northwind"]
    current = [a for a in bank.accounts.values() if a.kind == AccountKind.CURRENT]
    txs = [t for a in current for t in bank.ledger(a.account_id).transactions]
    span = max(t.booked_at for t in txs) - min(t.booked_at for t in txs)
    assert span >= timedelta(days=365)
    categories = Counter(t.category for t in txs)
    for needed in (
        "income",
        "housing",
        "groceries",
        "utilities",
        "eating_out",
        "transport",
        "cash",
    ):
        assert categories[needed] > 0, needed
    assert any(t.status == TxStatus.PENDING for t in txs)
    assert any(t.instructed_currency and t.instructed_currency != "GBP" for t in txs)
    assert any(t.category == "refund" and t.direction == Direction.CREDIT for t in txs)
    assert not any(t.booked_at > datetime(2026, 11, 20, 18, 0, tzinfo=UTC) for t in txs)


def test_every_card_payment_carries_the_raw_fields_a_bank_holds() -> None:
    bank = build_banks(BankSettings(customers_per_bank=2, anchor_date=TODAY))["libertas"]
    account = next(a for a in bank.accounts.values() if a.kind == AccountKind.CURRENT)
    payments = [
        t
        for t in bank.ledger(account.account_id).transactions
        if t.transaction_code == "CardPayment"
    ]
    assert payments
    for t in payments:
        assert t.mcc and t.raw_descriptor and t.bank_reference and t.card_id
        assert (t.latitude is not None and t.terminal_id) or (t.device_id and t.ip_address)
    customer = bank.customers[account.customer_id]
    assert customer.address and customer.date_of_birth and customer.phone and customer.email


def test_balance_after_chains_from_the_opening_balance() -> None:
    bank = build_banks(BankSettings(customers_per_bank=2, anchor_date=TODAY))["nakheel"]
    for account in bank.accounts.values():
        running = account.opening_balance_minor
        for t in bank.ledger(account.account_id).transactions:
            running += t.amount_minor if t.direction == Direction.CREDIT else -t.amount_minor
            assert t.balance_after_minor == running
            assert t.amount_minor > 0 and isinstance(t.amount_minor, int)


def test_a_large_bank_keeps_histories_lazy_and_bounded() -> None:
    bank = build_banks(
        BankSettings(customers_per_bank=50, anchor_date=TODAY, ledger_cache_accounts=5)
    )["wisla"]
    for account_id in list(bank.accounts)[:20]:
        bank.ledger(account_id)
    assert len(bank._ledgers) == 5


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.sampled_from(["Visa", "Mastercard"]))
def test_generated_card_numbers_pass_luhn(seed: int, network: str) -> None:
    pan = ids.card_number(random.Random(seed), network)
    assert ids.luhn_valid(pan)
    assert pan.startswith("4") if network == "Visa" else 51 <= int(pan[:2]) <= 55


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=0, max_value=15))
def test_a_single_changed_digit_breaks_luhn(seed: int, position: int) -> None:
    pan = ids.card_number(random.Random(seed), "Visa")
    changed = pan[:position] + str((int(pan[position]) + 1) % 10) + pan[position + 1 :]
    assert not ids.luhn_valid(changed)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["GB", "PL", "SA", "DE"]),
    st.text(alphabet="0123456789", min_size=11, max_size=26),
)
def test_generated_ibans_pass_mod_97(country: str, bban: str) -> None:
    value = ids.iban(country, bban)
    assert ids.iban_valid(value)
    assert len(value) == len(bban) + 4


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_generated_routing_numbers_pass_the_aba_checksum(seed: int) -> None:
    assert ids.aba_valid(ids.aba_routing(random.Random(seed)))


def test_masked_pans_show_only_the_last_four_digits() -> None:
    assert ids.mask_pan("4111111111111111") == "************1111"


def _summed(bank: BankState, account_id: str) -> tuple[int, int]:
    """The balances counted from scratch over the account's whole ledger."""
    account = bank.accounts[account_id]
    booked, pending_debits = account.opening_balance_minor, 0
    for tx in bank.ledger(account_id).transactions:
        signed = tx.amount_minor if tx.direction == Direction.CREDIT else -tx.amount_minor
        if tx.status == TxStatus.BOOKED:
            booked += signed
        elif signed < 0:
            pending_debits -= signed
    return booked, booked - pending_debits + account.credit_limit_minor


_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "book", "reverse", "evict", "read"]),
        st.integers(min_value=0, max_value=3),  # which account
        st.integers(min_value=1, max_value=500_000),  # amount in minor units
        st.sampled_from([Direction.DEBIT, Direction.CREDIT]),
        st.sampled_from([TxStatus.BOOKED, TxStatus.PENDING]),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(_STEPS)
def test_kept_balances_match_a_sum_over_the_ledger_after_any_changes(
    steps: list[tuple[str, int, int, Direction, TxStatus]],
) -> None:
    """Balances are kept up to date as transactions are booked, settle, are reversed or the
    ledger is evicted and made again; they always equal the sum over the ledger."""
    bank = build_banks(
        BankSettings(customers_per_bank=2, anchor_date=TODAY, ledger_cache_accounts=2)
    )["northwind"]
    accounts = list(bank.accounts)[:4]
    template = bank.ledger(accounts[0]).transactions[-1]
    added: list[Transaction] = []
    for n, (step, which, amount, direction, status) in enumerate(steps):
        account_id = accounts[which % len(accounts)]
        if step == "add":
            tx = replace(
                template,
                transaction_id=f"t{n}",
                account_id=account_id,
                booked_at=template.booked_at + timedelta(minutes=n),
                amount_minor=amount,
                direction=direction,
                status=status,
            )
            bank.add_transaction(tx)
            added.append(tx)
        elif step == "book" and added:
            pending = [t for t in added if t.status == TxStatus.PENDING]
            if pending:
                bank.book_pending(pending[amount % len(pending)])
        elif step == "reverse" and added:
            gone = added.pop(amount % len(added))
            bank.reverse_pending(gone)
        elif step == "evict":
            bank._ledgers.clear()
        assert bank.balances_minor(account_id) == _summed(bank, account_id)
    for account_id in accounts:
        assert bank.balances_minor(account_id) == _summed(bank, account_id)


_CONSENT_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["create", "authorise", "direct"]),
        st.integers(min_value=0, max_value=50),  # which customer / consent
        st.sets(st.integers(min_value=0, max_value=3), min_size=1),  # which of their accounts
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(_CONSENT_STEPS)
def test_the_consents_on_an_account_are_those_that_name_it(
    steps: list[tuple[str, int, set[int]]],
) -> None:
    """The bank finds the consents on an account (who to tell of an alert) from an index; it
    always names the same consents as a scan of all of them, however they came to be (created,
    approved by the customer, or added behind the index's back as a restore does)."""
    bank = build_banks(BankSettings(customers_per_bank=3, anchor_date=TODAY))["northwind"]
    customers = list(bank.customers.values())
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)

    def consent(n: int) -> Consent:
        return Consent(
            consent_id=f"aac-{n}",
            bank_id="northwind",
            client_id="c",
            permissions=["ReadBalances"],
            status=ConsentStatus.AWAITING_AUTHORISATION,
            created_at=now,
            status_updated_at=now,
            expires_at=None,
            transaction_from=None,
            transaction_to=None,
        )

    for n, (step, which, picks) in enumerate(steps):
        customer = customers[which % len(customers)]
        chosen = [customer.account_ids[i % len(customer.account_ids)] for i in sorted(picks)]
        if step == "create":
            bank.consents[f"aac-{n}"] = consent(n)
        elif step == "authorise":
            waiting = [
                c
                for c in bank.consents.values()
                if c.status == ConsentStatus.AWAITING_AUTHORISATION
            ]
            if waiting:
                approval.authorise(
                    bank,
                    waiting[which % len(waiting)],
                    customer,
                    chosen,
                    frozenset({"accounts"}),
                    now,
                    NullSink(),
                )
        else:
            direct = consent(n)
            direct.account_ids = list(dict.fromkeys(chosen))
            bank.consents[direct.consent_id] = direct
        for account_id in bank.accounts:
            found = [c.consent_id for c in bank.consents_on(account_id)]
            scanned = [c.consent_id for c in bank.consents.values() if account_id in c.account_ids]
            assert sorted(found) == sorted(scanned)
            assert len(set(found)) == len(found)
