"""Fixtures shared by the localchat tests."""

from tests.localchat.browser import page, shots

__all__ = ["page", "shots"]
