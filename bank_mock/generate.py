"""Deterministic seeded banks: the same seed always yields the same people, accounts and cards.

People come from Faker in each bank's locale, generated in order from one seeded instance per
bank; account histories are generated lazily per account (see :mod:`bank_mock.history`).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from faker import Faker

from bank_mock import identifiers as ids
from bank_mock.banks import BANKS, password, username
from bank_mock.catalog import CITIES, SCALE
from bank_mock.history import make_history
from bank_mock.models import Account, AccountKind, BankProfile, Card, Customer, Transaction
from bank_mock.settings import BankSettings
from bank_mock.state import BankState

_BANK_CODE = {"northwind": "NRWD", "libertas": "", "wisla": "10901014", "nakheel": "80"}


def build_banks(settings: BankSettings, *, today: date | None = None) -> dict[str, BankState]:
    """Every simulated bank, seeded from ``settings.seed``; histories end at ``today`` (UTC)."""
    anchor = today or settings.anchor_date or datetime.now(UTC).date()
    return {profile.bank_id: build_bank(profile, settings, anchor) for profile in BANKS}


def build_bank(profile: BankProfile, settings: BankSettings, anchor: date) -> BankState:
    end = datetime(anchor.year, anchor.month, anchor.day, 18, 0, tzinfo=UTC)
    start = end - timedelta(days=round(settings.history_months * 30.44))

    def history(account: Account) -> list[Transaction]:
        return make_history(settings.seed, profile, account, start, end)

    state = BankState(profile, history, settings.ledger_cache_accounts)
    fake = Faker(profile.locale)
    fake.seed_instance(f"{settings.seed}:{profile.bank_id}")
    rng = random.Random(f"{settings.seed}:{profile.bank_id}:accounts")
    for index in range(1, settings.customers_per_bank + 1):
        customer = _customer(fake, rng, profile, index)
        state.add_customer(customer)
        for account, cards in _accounts(rng, profile, customer, start.date()):
            state.accounts[account.account_id] = account
            customer.account_ids.append(account.account_id)
            for card in cards:
                state.cards[card.card_id] = card
    return state


def _customer(fake: Faker, rng: random.Random, profile: BankProfile, index: int) -> Customer:
    first, last = fake.first_name(), fake.last_name()
    city = rng.choice(CITIES[profile.country])
    if profile.country == "SA":  # Faker's ar_SA addresses are US-shaped; build a Saudi one
        address = (
            f"{rng.randint(1000, 9999)} طريق الملك فهد، {city.name} {rng.randint(11000, 14999)}"
        )
    else:
        address = f"{fake.street_address()}, {city.name} {fake.postcode()}".replace("\n", ", ")
    dob = date(1950, 1, 1) + timedelta(days=rng.randint(0, 365 * 52))
    return Customer(
        customer_id=f"{profile.bank_id[:2]}c{index:06d}",
        bank_id=profile.bank_id,
        username=username(index),
        password=password(index),
        full_name=f"{first} {last}",
        address=address,
        date_of_birth=dob,
        email=f"{username(index)}@example.{profile.country.lower()}",
        phone=fake.phone_number(),
    )


def _identifiers(
    rng: random.Random, profile: BankProfile
) -> tuple[str, str, str | None, str | None]:
    """(identification, account number, sort code or routing number, IBAN)."""
    if profile.country == "GB":
        sort_code, number = ids.digits(rng, 6), ids.digits(rng, 8)
        iban = ids.iban("GB", _BANK_CODE[profile.bank_id] + sort_code + number)
        return sort_code + number, number, sort_code, iban
    if profile.country == "US":
        routing, number = ids.aba_routing(rng), ids.digits(rng, 10)
        return routing + number, number, routing, None
    if profile.country == "PL":
        number = ids.digits(rng, 16)
        iban = ids.iban("PL", _BANK_CODE[profile.bank_id] + number)
        return iban, number, None, iban
    number = ids.digits(rng, 18)
    iban = ids.iban("SA", _BANK_CODE[profile.bank_id] + number)
    return iban, number, None, iban


def _accounts(
    rng: random.Random, profile: BankProfile, customer: Customer, opened_before: date
) -> list[tuple[Account, list[Card]]]:
    kinds = [AccountKind.CURRENT]
    if rng.random() < 0.7:
        kinds.append(AccountKind.SAVINGS)
    if rng.random() < 0.6:
        kinds.append(AccountKind.CREDIT_CARD)
    scale = SCALE[profile.currency]
    result = []
    for n, kind in enumerate(kinds):
        identification, number, sort_code, iban = _identifiers(rng, profile)
        account_id = f"{customer.customer_id}a{n}"
        opening = {
            AccountKind.CURRENT: rng.randint(150_000, 600_000),
            AccountKind.SAVINGS: rng.randint(200_000, 2_500_000),
            AccountKind.CREDIT_CARD: -rng.randint(0, 40_000),
        }[kind]
        account = Account(
            account_id=account_id,
            bank_id=profile.bank_id,
            customer_id=customer.customer_id,
            kind=kind,
            nickname=_NICKNAMES[kind],
            currency=profile.currency,
            scheme=profile.scheme,
            identification=identification,
            account_number=number,
            sort_code=sort_code,
            iban=iban,
            holder_name=customer.full_name,
            opened_on=opened_before - timedelta(days=rng.randint(30, 3650)),
            opening_balance_minor=round(opening * scale),
            credit_limit_minor=round(rng.choice([300_000, 500_000, 800_000]) * scale)
            if kind == AccountKind.CREDIT_CARD
            else 0,
        )
        cards = []
        if kind != AccountKind.SAVINGS:
            for c in range(2 if kind == AccountKind.CURRENT and rng.random() < 0.3 else 1):
                network = rng.choice(["Visa", "Mastercard"])
                card = Card(
                    card_id=f"{account_id}k{c}",
                    account_id=account_id,
                    pan=ids.card_number(rng, network),
                    network=network,
                    expiry=f"{rng.randint(1, 12):02d}/{rng.randint(27, 31)}",
                )
                cards.append(card)
                account.card_ids.append(card.card_id)
        result.append((account, cards))
    return result


_NICKNAMES = {
    AccountKind.CURRENT: "Everyday",
    AccountKind.SAVINGS: "Savings",
    AccountKind.CREDIT_CARD: "Credit card",
}
