"""The in-memory state of one simulated bank.

Customers, accounts and cards are generated up front (they are small). Transaction histories are
generated lazily per account, deterministically from the seed, and kept in a bounded LRU so that
a bank with many customers stays small in memory; transactions added at run time (sandbox
injections) are kept apart and merged in, so nothing added is lost when a history is evicted.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from bank_mock.models import (
    Account,
    BankProfile,
    Card,
    Client,
    Consent,
    Customer,
    FraudAlert,
    Transaction,
    TxStatus,
)

if TYPE_CHECKING:
    from bank_mock.disk import Disk

HistoryFactory = Callable[[Account], list[Transaction]]


class Ledger:
    """One account's transactions, sorted by booking time, with running balances."""

    __slots__ = ("_keys", "_sums", "fragments", "transactions")

    def __init__(self, transactions: list[Transaction]) -> None:
        self.transactions = sorted(transactions, key=lambda t: (t.booked_at, t.transaction_id))
        self._keys = [t.booked_at for t in self.transactions]
        # serialized OBIE JSON per (transaction id, shape); dropped with the ledger
        self.fragments: dict[tuple[str, int], bytes] = {}
        # (booked total, pending debits) in minor units: summed on first use, then kept up to
        # date by insert; forgotten when a transaction leaves or changes (remove, changed)
        self._sums: tuple[int, int] | None = None

    def sums(self) -> tuple[int, int]:
        """(signed total of the booked transactions, total of the pending debits)."""
        if self._sums is None:
            booked = pending_debits = 0
            for tx in self.transactions:
                booked, pending_debits = _add(booked, pending_debits, tx)
            self._sums = booked, pending_debits
        return self._sums

    def bounds(self, start: datetime | None, end: datetime | None) -> tuple[int, int]:
        """Index range of transactions with ``start <= booked_at <= end`` (bounds optional)."""
        lo = 0 if start is None else bisect.bisect_left(self._keys, start)
        hi = len(self._keys) if end is None else bisect.bisect_right(self._keys, end)
        return lo, hi

    def between(self, start: datetime | None, end: datetime | None) -> Sequence[Transaction]:
        """Transactions with ``start <= booked_at <= end`` (either bound open), oldest first."""
        lo, hi = self.bounds(start, end)
        return self.transactions[lo:hi]

    def insert(self, tx: Transaction) -> None:
        i = bisect.bisect_right(self._keys, tx.booked_at)
        self._keys.insert(i, tx.booked_at)
        self.transactions.insert(i, tx)
        if self._sums is not None:
            self._sums = _add(*self._sums, tx)

    def remove(self, tx: Transaction) -> None:
        if tx in self.transactions:
            i = self.transactions.index(tx)
            del self.transactions[i]
            del self._keys[i]
        self.changed(tx)

    def changed(self, tx: Transaction) -> None:
        """``tx`` changed (or left): what was derived from it is made again on next use."""
        self._sums = None
        for shape in range(4):
            self.fragments.pop((tx.transaction_id, shape), None)


def _add(booked: int, pending_debits: int, tx: Transaction) -> tuple[int, int]:
    signed = tx.amount_minor if tx.direction == "Credit" else -tx.amount_minor
    if tx.status == TxStatus.BOOKED:
        return booked + signed, pending_debits
    if signed < 0:
        return booked, pending_debits - signed
    return booked, pending_debits


class BankState:
    """Everything one bank knows. Mutated only from the event loop thread."""

    def __init__(self, profile: BankProfile, history: HistoryFactory, cache_accounts: int) -> None:
        self.profile = profile
        self.customers: dict[str, Customer] = {}
        self.customers_by_username: dict[str, Customer] = {}
        self.accounts: dict[str, Account] = {}
        self.cards: dict[str, Card] = {}
        self.consents: dict[str, Consent] = {}
        self.clients: dict[str, Client] = {}
        self.alerts: dict[str, FraudAlert] = {}
        self._history = history
        self._cache_accounts = cache_accounts
        self._ledgers: OrderedDict[str, Ledger] = OrderedDict()
        self._added: dict[str, list[Transaction]] = {}  # run-time transactions per account
        self._pinned: dict[str, Ledger] = {}  # histories set with replace_history
        self.version = 0  # bumped on every mutation of transactions; for caches keyed on it
        # account id -> ids of the consents that name it (any status), in the order indexed;
        # made again whenever consents were added behind its back (restore, tests)
        self._by_account: dict[str, dict[str, None]] = {}
        self._indexed = 0
        self.disk: Disk | None = None  # where run-time changes are kept (bank_mock.disk)

    def keep(self, kind: str, key: str, value: object) -> None:
        """Write a changed record through to disk (a no-op for a bank kept in memory)."""
        if self.disk is not None:
            self.disk.put(kind, f"{self.profile.bank_id}/{key}", value)

    def restore(self, disk: Disk) -> None:
        """Take back what this bank learnt before a restart, and keep what comes next."""
        from bank_mock import disk as kinds

        mine = f"{self.profile.bank_id}/"
        for key, client in disk.load(kinds.CLIENT, Client):
            if key.startswith(mine):
                self.clients[client.client_id] = client
        for key, consent in disk.load(kinds.CONSENT, Consent):
            if key.startswith(mine):
                self.consents[consent.consent_id] = consent
        for key, card in disk.load(kinds.CARD, Card):
            if key.startswith(mine) and card.card_id in self.cards:
                self.cards[card.card_id].status = card.status
        for key, alert in disk.load(kinds.ALERT, FraudAlert):
            if key.startswith(mine):
                self.alerts[alert.alert_id] = alert
        for key, tx in disk.load(kinds.TRANSACTION, Transaction):
            if key.startswith(mine) and tx.account_id in self.accounts:
                self.add_transaction(tx)
        self.disk = disk

    def consents_on(self, account_id: str) -> list[Consent]:
        """The consents that name ``account_id`` (any status: callers check it), without a
        scan of every consent the bank holds (three per booked payment otherwise)."""
        if self._indexed != len(self.consents):
            self._by_account = {}
            for consent in self.consents.values():
                self.index_consent(consent)
            self._indexed = len(self.consents)
        named = (self.consents[c] for c in self._by_account.get(account_id, ()))
        return [c for c in named if account_id in c.account_ids]  # an entry may be stale

    def index_consent(self, consent: Consent) -> None:
        """``consent`` now names its accounts (set when the customer approves it)."""
        for account_id in consent.account_ids:
            self._by_account.setdefault(account_id, {})[consent.consent_id] = None

    def add_customer(self, customer: Customer) -> None:
        self.customers[customer.customer_id] = customer
        self.customers_by_username[customer.username] = customer

    def ledger(self, account_id: str) -> Ledger:
        """The account's full history (generated on first use, then cached, LRU-bounded)."""
        pinned = self._pinned.get(account_id)
        if pinned is not None:
            return pinned
        ledger = self._ledgers.get(account_id)
        if ledger is not None:
            self._ledgers.move_to_end(account_id)
            return ledger
        account = self.accounts[account_id]
        ledger = Ledger(self._history(account) + self._added.get(account_id, []))
        self._ledgers[account_id] = ledger
        while len(self._ledgers) > self._cache_accounts:
            self._ledgers.popitem(last=False)
        return ledger

    def replace_history(self, account_id: str, transactions: list[Transaction]) -> None:
        """Give an account a history of its own (benchmarks); it is never evicted."""
        self._pinned[account_id] = Ledger(transactions)
        self._ledgers.pop(account_id, None)
        self.version += 1

    def add_transaction(self, tx: Transaction) -> None:
        """Record a transaction that happens at run time (never lost on cache eviction)."""
        self._added.setdefault(tx.account_id, []).append(tx)
        self.keep("transaction", tx.transaction_id, tx)
        cached = self._pinned.get(tx.account_id) or self._ledgers.get(tx.account_id)
        if cached is not None:
            cached.insert(tx)
        self.version += 1

    def find_added(self, transaction_id: str) -> Transaction | None:
        """A transaction booked at run time, by id (None: unknown or not a run-time one)."""
        for txs in self._added.values():
            for tx in txs:
                if tx.transaction_id == transaction_id:
                    return tx
        return None

    def book_pending(self, tx: Transaction) -> None:
        """A pending card payment settles: it is booked, same id and time."""
        tx.status = TxStatus.BOOKED
        self.keep("transaction", tx.transaction_id, tx)
        cached = self._pinned.get(tx.account_id) or self._ledgers.get(tx.account_id)
        if cached is not None:
            cached.changed(tx)
        self.version += 1

    def reverse_pending(self, tx: Transaction) -> None:
        """A pending card payment is reversed (the merchant released it): it leaves the
        statement, as a released authorization does."""
        added = self._added.get(tx.account_id, [])
        if tx in added:
            added.remove(tx)
        if self.disk is not None:
            self.disk.drop("transaction", [f"{self.profile.bank_id}/{tx.transaction_id}"])
        cached = self._pinned.get(tx.account_id) or self._ledgers.get(tx.account_id)
        if cached is not None:
            cached.remove(tx)
        self.version += 1

    def balances_minor(self, account_id: str) -> tuple[int, int]:
        """(booked, available) balance in minor units.

        Booked ("InterimBooked") counts booked transactions only; available also takes pending
        debits off and, for credit cards, adds the unused credit limit.
        """
        account = self.accounts[account_id]
        total, pending_debits = self.ledger(account_id).sums()
        booked = account.opening_balance_minor + total
        return booked, booked - pending_debits + account.credit_limit_minor
