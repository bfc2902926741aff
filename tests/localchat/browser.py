"""Browser fixtures for page-level tests: Playwright driving Debian's headless Chromium.

Use them from any test module with ``from tests.localchat.browser import page, shots`` (the
localchat tests get them through ``tests/localchat/conftest.py``). ``page`` yields a Playwright
``Page`` in a fresh context and fails the test if the page throws an uncaught JavaScript error;
``shots`` is the folder for screenshots: ``$CHATBANK_SCREENSHOTS`` if set, else the test's
temporary folder. Without /usr/bin/chromium the tests using ``page`` are skipped, with the
reason and the way to install it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Page

CHROMIUM = Path("/usr/bin/chromium")
NO_CHROMIUM = "Debian's Chromium is missing at /usr/bin/chromium (apt-get install chromium)"
HAVE_CHROMIUM = CHROMIUM.exists()
requires_chromium = pytest.mark.skipif(not HAVE_CHROMIUM, reason=NO_CHROMIUM)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: ``$CHATBANK_SCREENSHOTS`` or ``<tmp_path>/screenshots``."""
    folder = Path(os.environ.get("CHATBANK_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    """A fresh headless Chromium page (900x1000); uncaught page errors fail the test."""
    if not HAVE_CHROMIUM:
        pytest.skip(NO_CHROMIUM)
    from playwright.async_api import async_playwright

    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = await browser.new_context(viewport={"width": 900, "height": 1000})
            tab = await context.new_page()
            tab.on("pageerror", lambda error: errors.append(str(error)))
            yield tab
        finally:
            await browser.close()
    assert not errors, f"the page threw: {errors}"
