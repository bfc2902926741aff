"""Transaction histories, generated per account and deterministically from (seed, account id).

A history is a year and more of realistic activity: salary, rent, utilities and subscriptions on
their days; groceries, eating out, transport, fuel and shopping most days; cash withdrawals,
refunds, transfers to savings, a trip abroad with foreign-currency card spends, and the last two
days' card payments still pending. Every record carries the raw fields a bank really holds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from bank_mock import catalog
from bank_mock.catalog import City, Merchant
from bank_mock.identifiers import digits
from bank_mock.models import Account, AccountKind, BankProfile, Direction, Transaction, TxStatus

_PENDING_WINDOW = timedelta(days=2)


@dataclass(slots=True)
class _Draft:
    at: datetime
    amount: int  # minor units of the account currency, positive
    direction: Direction
    code: str
    category: str
    merchant: str | None
    descriptor: str
    mcc: str | None
    card_id: str | None = None
    counterparty: str | None = None
    country: str = ""
    city: City | None = None
    online: bool = False
    instructed: tuple[int, str] | None = None
    risk: int = 0


class _Gen:
    def __init__(
        self, seed: int, profile: BankProfile, account: Account, start: datetime, end: datetime
    ) -> None:
        self.rng = random.Random(f"{seed}:{account.account_id}:history")
        self.profile = profile
        self.account = account
        self.start = start
        self.end = end
        self.scale = catalog.SCALE[account.currency]
        self.home = catalog.CITIES[profile.country][
            self.rng.randrange(len(catalog.CITIES[profile.country]))
        ]
        self.card = account.card_ids[0] if account.card_ids else None
        self.drafts: list[_Draft] = []

    def money(self, gbp_minor: int) -> int:
        return max(1, round(gbp_minor * self.scale))

    def days(self) -> list[datetime]:
        first = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        count = (self.end - first).days + 1
        return [first + timedelta(days=i) for i in range(count)]

    def at(self, day: datetime, lo: int = 7, hi: int = 22) -> datetime:
        t = day + timedelta(hours=self.rng.randint(lo, hi - 1), minutes=self.rng.randint(0, 59))
        return min(t, self.end)

    def card_spend(
        self,
        day: datetime,
        m: Merchant,
        *,
        city: City | None = None,
        foreign: str | None = None,
        card: str | None = None,
    ) -> _Draft:
        city = city or self.home
        local = self.rng.randint(m.low, m.high)
        instructed = None
        amount = self.money(local)
        if foreign is not None:
            instructed = (max(1, round(local * catalog.SCALE[foreign])), foreign)
            amount = round(amount * 1.0275)  # the bank's FX fee
        draft = _Draft(
            at=self.at(day),
            amount=amount,
            direction=Direction.DEBIT,
            code="CardPayment",
            category=m.category,
            merchant=m.name,
            descriptor=m.descriptor,
            mcc=m.mcc,
            card_id=card or self.card,
            country=city.country,
            city=city,
            online=m.online,
            instructed=instructed,
            risk=self.rng.randint(10, 35) if foreign else self.rng.randint(0, 12),
        )
        self.drafts.append(draft)
        return draft

    def transfer(
        self, day: datetime, amount: int, direction: Direction, name: str, code: str, cat: str
    ) -> None:
        self.drafts.append(
            _Draft(
                at=self.at(day, 1, 6),
                amount=amount,
                direction=direction,
                code=code,
                category=cat,
                merchant=None,
                descriptor=name,
                mcc=None,
                counterparty=digits(self.rng, 14),
                country=self.profile.country,
            )
        )


def _current(g: _Gen) -> None:
    rng, country = g.rng, g.profile.country
    salary = rng.randint(220_000, 520_000)
    factor = min(1.4, max(0.7, salary / 350_000))
    employer = rng.choice(catalog.EMPLOYERS[country])
    subs = [s for s in catalog.SUBSCRIPTIONS if rng.random() < 0.6]
    sub_days = {s.name: rng.randint(1, 28) for s in subs}
    trip_start = g.start + timedelta(days=rng.randint(60, 300))
    trip_len = rng.randint(5, 9)
    trip_country, trip_currency = rng.choice(catalog.TRIPS[country])
    trip_city = catalog.CITIES[trip_country][0]
    local = catalog.LOCAL_MERCHANTS[country]
    daily = (  # (merchant filter by category, probability per day)
        ("groceries", 0.35),
        ("eating_out", 0.4),
        ("transport", 0.45),
        ("fuel", 0.07),
        ("health", 0.03),
        ("shopping", 0.05),
    )
    airline = catalog.AIRLINES[country]
    g.card_spend(trip_start - timedelta(days=rng.randint(20, 60)), airline)
    for day in g.days():
        if day.day == 25:
            amount = g.money(round(salary * rng.uniform(0.98, 1.03)))
            g.transfer(
                day, amount, Direction.CREDIT, f"{employer} SALARY", "BankGiroCredit", "income"
            )
        if day.day == 1:
            g.transfer(
                day,
                g.money(round(salary * 0.33)),
                Direction.DEBIT,
                "RENT PAYMENT",
                "StandingOrder",
                "housing",
            )
        if day.day == 26 and salary > 300_000:
            g.transfer(
                day,
                g.money(round(salary * 0.08)),
                Direction.DEBIT,
                "TRANSFER TO SAVINGS",
                "Transfer",
                "transfer",
            )
        for i, (name, descriptor, monthly) in enumerate(catalog.UTILITIES[country]):
            if day.day == 5 + 7 * i:
                g.drafts.append(
                    _Draft(
                        g.at(day, 2, 6),
                        g.money(monthly + rng.randint(-400, 600)),
                        Direction.DEBIT,
                        "DirectDebit",
                        "utilities",
                        name,
                        descriptor,
                        None,
                        country=country,
                    )
                )
        for s in subs:
            if day.day == sub_days[s.name]:
                g.card_spend(day, s)
        abroad = trip_start <= day < trip_start + timedelta(days=trip_len)
        if abroad:
            for m in catalog.TRAVEL_MERCHANTS:
                if rng.random() < (0.9 if m.category == "travel" and day == trip_start else 0.5):
                    g.card_spend(day, m, city=trip_city, foreign=trip_currency)
            continue
        for category, p in daily:
            if rng.random() < p * factor:
                m = rng.choice([m for m in local if m.category == category])
                spend = g.card_spend(day, m)
                if category == "shopping" and rng.random() < 0.1:
                    _refund(g, spend)
        if rng.random() < 0.08 * factor:
            spend = g.card_spend(day, rng.choice(catalog.ONLINE_MERCHANTS))
            if rng.random() < 0.08:
                _refund(g, spend)
        if rng.random() < 0.04:
            units = rng.choice([20, 40, 60, 100])
            amount = g.money(units * 100) // 1000 * 1000 or g.money(units * 100)
            g.drafts.append(
                _Draft(
                    g.at(day),
                    amount,
                    Direction.DEBIT,
                    "ATMWithdrawal",
                    "cash",
                    None,
                    "ATM WITHDRAWAL",
                    "6011",
                    card_id=g.card,
                    country=country,
                    city=g.home,
                )
            )


def _refund(g: _Gen, spend: _Draft) -> None:
    day = spend.at + timedelta(days=g.rng.randint(3, 10))
    if day >= g.end:
        return
    g.drafts.append(
        _Draft(
            day,
            spend.amount,
            Direction.CREDIT,
            "Refund",
            "refund",
            spend.merchant,
            f"REFUND {spend.descriptor}",
            spend.mcc,
            card_id=spend.card_id,
            country=spend.country,
            city=spend.city,
            online=spend.online,
        )
    )


def _savings(g: _Gen) -> None:
    monthly = g.money(g.rng.randint(10_000, 60_000))
    for day in g.days():
        if day.day == 26:
            g.transfer(
                day, monthly, Direction.CREDIT, "TRANSFER FROM CURRENT", "Transfer", "transfer"
            )
        if day.day == 1 and day.month in (1, 4, 7, 10):
            g.transfer(
                day,
                g.money(g.rng.randint(500, 4000)),
                Direction.CREDIT,
                "INTEREST",
                "Interest",
                "interest",
            )
        if g.rng.random() < 0.004:
            g.transfer(
                day,
                g.money(g.rng.randint(20_000, 150_000)),
                Direction.DEBIT,
                "TRANSFER TO CURRENT",
                "Transfer",
                "transfer",
            )


def _credit_card(g: _Gen) -> None:
    local = catalog.LOCAL_MERCHANTS[g.profile.country]
    spent_this_month = 0
    for day in g.days():
        if day.day == 20 and spent_this_month:
            g.transfer(
                day,
                spent_this_month,
                Direction.CREDIT,
                "PAYMENT RECEIVED THANK YOU",
                "Transfer",
                "transfer",
            )
            spent_this_month = 0
        if g.rng.random() < 0.3:
            spent_this_month += g.card_spend(day, g.rng.choice(local)).amount
        if g.rng.random() < 0.08:
            spent_this_month += g.card_spend(day, g.rng.choice(catalog.ONLINE_MERCHANTS)).amount


def _finish(g: _Gen) -> list[Transaction]:
    rng = g.rng
    drafts = sorted((d for d in g.drafts if g.start <= d.at <= g.end), key=lambda d: d.at)
    balance = g.account.opening_balance_minor
    out: list[Transaction] = []
    for n, d in enumerate(drafts):
        pending = d.code in ("CardPayment", "ATMWithdrawal") and d.at > g.end - _PENDING_WINDOW
        balance += d.amount if d.direction == Direction.CREDIT else -d.amount
        city = d.city
        store = digits(rng, 4)
        if d.online:
            raw = f"{d.descriptor}*{digits(rng, 6)} {d.country}"
        elif city is not None:
            raw = f"{d.descriptor} {store} {city.name.upper()} {d.country}"
        else:
            raw = d.descriptor
        is_card = d.card_id is not None
        out.append(
            Transaction(
                transaction_id=f"{g.account.account_id}t{n:06d}",
                account_id=g.account.account_id,
                booked_at=d.at,
                value_at=d.at,
                amount_minor=d.amount,
                currency=g.account.currency,
                direction=d.direction,
                status=TxStatus.PENDING if pending else TxStatus.BOOKED,
                merchant_name=d.merchant,
                raw_descriptor=raw,
                mcc=d.mcc,
                category=d.category,
                transaction_code=d.code,
                card_id=d.card_id,
                counterparty_account=d.counterparty,
                country=d.country,
                latitude=round(city.lat + rng.uniform(-0.05, 0.05), 5)
                if city and not d.online
                else None,
                longitude=round(city.lon + rng.uniform(-0.05, 0.05), 5)
                if city and not d.online
                else None,
                terminal_id=f"T{digits(rng, 8)}" if is_card and not d.online else None,
                device_id=f"dev-{rng.getrandbits(48):012x}" if d.online else None,
                ip_address=_ip(rng) if d.online else None,
                bank_reference=f"{g.profile.bank_id[:3].upper()}{rng.getrandbits(40):010X}",
                balance_after_minor=balance,
                instructed_amount_minor=d.instructed[0] if d.instructed else None,
                instructed_currency=d.instructed[1] if d.instructed else None,
                risk_score=d.risk,
            )
        )
    return out


def _ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1, 223 if i == 0 else 254)) for i in range(4))


def make_history(
    seed: int, profile: BankProfile, account: Account, start: datetime, end: datetime
) -> list[Transaction]:
    """The account's history between ``start`` and ``end``, oldest first."""
    g = _Gen(seed, profile, account, start, end)
    {
        AccountKind.CURRENT: _current,
        AccountKind.SAVINGS: _savings,
        AccountKind.CREDIT_CARD: _credit_card,
    }[account.kind](g)
    return _finish(g)


def heavy_history(
    seed: int, profile: BankProfile, account: Account, end: datetime, count: int
) -> list[Transaction]:
    """``count`` card payments ending at ``end`` (for benchmarks of very long histories)."""
    g = _Gen(seed, profile, account, end - timedelta(days=count // 20 + 1), end)
    local = catalog.LOCAL_MERCHANTS[profile.country]
    step = (end - g.start) / count
    for i in range(count):
        g.card_spend(g.start + step * i, g.rng.choice(local)).at = g.start + step * i
    return _finish(g)
