"""The fraud engine's rules: pure functions of a transaction and the account's recent history."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from bank_mock.models import Direction, Transaction

LOOKBACK = timedelta(days=90)


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """Thresholds, in the account's minor units where they are amounts."""

    amount_multiple: int = 5  # unusual: more than this many times the median debit …
    amount_floor_minor: int = 25_000  # … and above this floor
    repeat_count: int = 3  # rapid repeats: this many card debits …
    repeat_window: timedelta = timedelta(minutes=10)  # … within this window
    testing_count: int = 3  # card testing: this many tiny card debits …
    testing_max_minor: int = 200  # … each at most this much …
    testing_window: timedelta = timedelta(minutes=30)  # … within this window, at 2+ merchants


@dataclass(frozen=True, slots=True)
class Verdict:
    rule_ids: tuple[str, ...]
    reason: str | None  # the category of the strongest rule that fired
    risk_score: int  # 0..100

    @property
    def alert(self) -> bool:
        return bool(self.rule_ids)


# rule id → (reason category, risk contribution)
RULES: dict[str, tuple[str, int]] = {
    "AMT-01": ("unusual_amount", 45),
    "GEO-01": ("unusual_country", 35),
    "VEL-01": ("rapid_repeats", 30),
    "CT-01": ("card_testing", 50),
}


def _card_debits(
    history: Sequence[Transaction], tx: Transaction, window: timedelta
) -> list[Transaction]:
    start = tx.booked_at - window
    recent = [
        t
        for t in history
        if t.card_id and t.direction == Direction.DEBIT and start <= t.booked_at <= tx.booked_at
    ]
    return [*recent, tx]


def evaluate(
    tx: Transaction, history: Sequence[Transaction], home_country: str, config: RuleConfig
) -> Verdict:
    """Which rules ``tx`` trips given the history before it (credits never alert)."""
    if tx.direction != Direction.DEBIT:
        return Verdict((), None, 0)
    since = tx.booked_at - LOOKBACK
    recent = [t for t in history if since <= t.booked_at < tx.booked_at]
    fired: list[str] = []
    debits = [t.amount_minor for t in recent if t.direction == Direction.DEBIT]
    norm = statistics.median(debits) if debits else 0
    if tx.amount_minor > max(config.amount_multiple * norm, config.amount_floor_minor):
        fired.append("AMT-01")
    seen = {t.country for t in recent}
    if tx.country != home_country and tx.country not in seen:
        fired.append("GEO-01")
    if tx.card_id:
        if len(_card_debits(recent, tx, config.repeat_window)) >= config.repeat_count:
            fired.append("VEL-01")
        tiny = [
            t
            for t in _card_debits(recent, tx, config.testing_window)
            if t.amount_minor <= config.testing_max_minor
        ]
        if (
            tx.amount_minor <= config.testing_max_minor
            and len(tiny) >= config.testing_count
            and len({t.merchant_name for t in tiny}) >= 2
        ):
            fired.append("CT-01")
    if not fired:
        return Verdict((), None, min(100, 5 + len(recent) // 1000))
    strongest = max(fired, key=lambda r: RULES[r][1])
    score = min(100, 10 + sum(RULES[r][1] for r in fired))
    return Verdict(tuple(fired), RULES[strongest][0], score)
