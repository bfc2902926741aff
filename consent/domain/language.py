"""The user's language on the pages the customer's browser sees during a link (pure).

The platform names it when the link starts; the bank gets it as ``ui_locales`` and the broker
keeps it in the OAuth ``state`` it generates (``<random>.<language>``), so the page the bank
sends the browser back to speaks it too, with no extra column."""

from __future__ import annotations

LANGUAGES = ("en", "ar", "pl")


def supported(tag: str | None) -> str | None:
    """``"ar-SA"`` → ``"ar"``; None when the pages do not speak it."""
    base = (tag or "").strip().split("-")[0].split("_")[0].lower()
    return base if base in LANGUAGES else None


def state_with_language(token: str, language: str | None) -> str:
    """The OAuth state for a link: the random token, then the page language after a dot (none
    when the pages do not speak it: the browser's own preference then decides)."""
    chosen = supported(language)
    return f"{token}.{chosen}" if chosen else token


def language_of_state(state: str) -> str | None:
    return supported(state.rpartition(".")[2]) if "." in state else None
