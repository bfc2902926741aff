"""Suite-wide settings.

Hypothesis must not fail a property because a busy 2-core machine made data generation slow
(the properties themselves still run their full example counts). With
``CHATBANK_HYPOTHESIS_DERANDOMIZE=1`` (set by ``.ci/run``) every property draws the same examples
on every run, so the gate passes or fails on the code, not on the draw; a developer's
``make test`` draws new ones each time and keeps exploring (CI once failed on an amount
schemathesis had never drawn before: found that way, fixed, and now under its own property).

The tests never read the developer's ``.env``: every settings class is built from its defaults
and what a test passes (a moved ``BANK_PORT`` in a working copy must not fail an OBIE test).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from pydantic_settings import BaseSettings

import bank_mock.settings
import bot.settings
import consent.settings
import localchat.settings

settings.register_profile(
    "chatbank",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CHATBANK_HYPOTHESIS_DERANDOMIZE") == "1",
)
settings.load_profile("chatbank")

SERVICES = (bank_mock.settings, bot.settings, consent.settings, localchat.settings)


def settings_classes() -> list[type[BaseSettings]]:
    """Every settings class imported so far (the services' and any a test module defines)."""
    found: list[type[BaseSettings]] = []
    todo = list(BaseSettings.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def ignore_dotenv() -> None:
    for cls in settings_classes():
        cls.model_config["env_file"] = None


ignore_dotenv()  # before any test module builds settings at import time


@pytest.fixture(autouse=True, scope="session")
def _no_dotenv() -> None:
    ignore_dotenv()  # again after collection: classes from modules imported since
