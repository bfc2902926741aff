"""Typed errors of the broker's use cases; the API turns them into ``{"error", "detail"}``."""

from __future__ import annotations


class BrokerError(Exception):
    def __init__(
        self, status: int, code: str, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def not_found(what: str) -> BrokerError:
    return BrokerError(404, "not_found", f"{what} not found")


def bad_request(detail: str, code: str = "invalid_request") -> BrokerError:
    return BrokerError(400, code, detail)
