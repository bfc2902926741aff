"""One consent's balances from its bank, planned inside the request's deadline.

The account list and the balances of every account already known run at once; when no account
is known yet (the first read after linking) the list and the bank's bulk ``GET /balances`` run at
once, so even the first read is one round trip. Accounts the list names and no balance read
covered are read as soon as the list arrives. Every read is idempotent, so each is
retried with jittered backoff while the budget lasts (:mod:`consent.service.planner`). Nothing
here raises for a bank failure: what could not be read is missing from :class:`Fetched` and
``failure`` says why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from consent.banks.client import BankCallError, BankRefusedError, BankUnavailableError
from consent.service.deadline import Deadline
from consent.service.errors import BrokerError
from consent.service.planner import RetryPlan, within

Page = dict[str, Any]


class AccountReader(Protocol):
    async def read(
        self,
        access_token: str,
        path: str,
        params: dict[str, str] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> Page: ...


@dataclass(frozen=True, slots=True)
class Fetched:
    """What the bank gave inside the deadline."""

    accounts: list[Page] | None  # None when the account list itself could not be read
    balances: dict[str, list[Page]]  # bank account id -> its Balance objects, read just now
    failure: Exception | None = None  # why something is missing (the first failure)

    @property
    def token_refused(self) -> bool:
        """The bank refused the access token (time to refresh it once)."""
        return isinstance(self.failure, BankRefusedError) and self.failure.status == 401

    @property
    def complete(self) -> bool:
        return self.accounts is not None and all(
            str(a.get("AccountId")) in self.balances for a in self.accounts
        )


def reason(failure: BaseException | None) -> str:
    """The typed reason the platform sees for data that is missing or not fresh."""
    if isinstance(failure, BankUnavailableError):
        return "bank_timeout" if failure.status == 504 else "bank_unavailable"
    if isinstance(failure, TimeoutError):
        return "bank_timeout"
    if isinstance(failure, BankRefusedError):
        return "reauthorization_needed" if failure.status in (401, 403) else "bank_refused"
    if isinstance(failure, BrokerError):
        return (
            "reauthorization_needed"
            if failure.code in ("consent_not_authorized", "consent_needs_reauthorization")
            else failure.code
        )
    return "bank_unavailable"


async def fetch_balances(
    bank: AccountReader,
    token: str,
    known_ids: Iterable[str],
    deadline: Deadline,
    plan: RetryPlan | None = None,
) -> Fetched:
    """The account list and each account's balances, concurrently, inside ``deadline``."""

    async def get(path: str) -> Page:
        return await within(
            deadline, lambda left: bank.read(token, path, timeout_s=left), plan, bounded=True
        )

    known = list(dict.fromkeys(known_ids))
    if known:
        listed, *pages = await asyncio.gather(
            get("/accounts"), *(get(_balances_path(a)) for a in known), return_exceptions=True
        )
        balances, failure = _collect(zip(known, pages, strict=True))
    else:  # no account known yet (the first read): the list and every balance at once
        listed, bulk = await asyncio.gather(
            get("/accounts"), get("/balances"), return_exceptions=True
        )
        balances, failure = _bulk(bulk)
    if isinstance(listed, BaseException):
        return Fetched(None, balances, _bank_failure(listed))
    accounts: list[Page] = list(listed["Data"]["Account"])
    new = [str(a["AccountId"]) for a in accounts if str(a["AccountId"]) not in known]
    new = [a for a in new if a not in balances]
    if new:
        more = await asyncio.gather(*(get(_balances_path(a)) for a in new), return_exceptions=True)
        later, later_failure = _collect(zip(new, more, strict=True))
        balances.update(later)
        failure = failure or later_failure
    wanted = {str(a["AccountId"]) for a in accounts}
    return Fetched(accounts, {k: v for k, v in balances.items() if k in wanted}, failure)


NO_BULK = frozenset({404, 405})  # a bank without GET /balances: read them one by one


def _bulk(page: Page | BaseException) -> tuple[dict[str, list[Page]], Exception | None]:
    """Balances by account from the bulk ``GET /balances``; a bank that does not offer it is
    no failure (its accounts are then read one by one)."""
    if isinstance(page, BankRefusedError) and page.status in NO_BULK:
        return {}, None
    if isinstance(page, BaseException):
        return {}, _bank_failure(page)
    got: dict[str, list[Page]] = {}
    for balance in page["Data"]["Balance"]:
        got.setdefault(str(balance.get("AccountId")), []).append(balance)
    return got, None


def _balances_path(account_id: str) -> str:
    return f"/accounts/{account_id}/balances"


def _collect(
    results: Iterable[tuple[str, Page | BaseException]],
) -> tuple[dict[str, list[Page]], Exception | None]:
    got: dict[str, list[Page]] = {}
    failure: Exception | None = None
    for account_id, page in results:
        if isinstance(page, BaseException):
            failure = failure or _bank_failure(page)
        else:
            got[account_id] = list(page["Data"]["Balance"])
    return got, failure


def _bank_failure(error: BaseException) -> Exception:
    """A bank's failure is a result; anything else (a bug, a cancellation) is raised."""
    if isinstance(error, BankCallError | TimeoutError | BrokerError):
        return error
    raise error
