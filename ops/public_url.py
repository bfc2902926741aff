"""The check both public-facing services run on their public address in production: a phone,
a bank's browser redirect and Telegram's webhook must reach it, so it must be real https."""

from __future__ import annotations

from urllib.parse import urlsplit

PLACEHOLDER_HOSTS = ("example.com", "example.org", "example.net", "localhost")


def public_https_problem(name: str, url: str) -> str | None:
    """Why ``url`` cannot be the public address people and Telegram use, or None."""
    parsed = urlsplit(url)
    host = (parsed.hostname or "").lower()
    if not url:
        return f"{name} must be set outside development: the https address others reach"
    if parsed.scheme != "https" or not host:
        return f"{name} must be an https:// address outside development (got {url!r})"
    if (
        host in PLACEHOLDER_HOSTS
        or host.endswith((".example", ".invalid", ".localhost", *PLACEHOLDER_HOSTS))
        or "change-me" in host
    ):
        return f"{name} is a placeholder ({host}); set the real public address"
    if host.startswith("127.") or host in ("::1", "0.0.0.0"):  # noqa: S104 - a check, not a bind
        return f"{name} points at this machine ({host}); phones and Telegram cannot reach it"
    return None
