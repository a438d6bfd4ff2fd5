"""A real browser for the pages durable_gen serves: Playwright driving Chromium.

Chromium is Debian's package (``apt-get install chromium``, /usr/bin/chromium) or
any other build named by ``DURABLE_GEN_CHROMIUM``; Playwright's own download is not
needed. Without a browser these tests are skipped with the reason, except where
``DURABLE_GEN_REQUIRE_BROWSER=1`` is set (CI sets it): there a missing browser fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _chromium() -> str | None:
    named = os.environ.get("DURABLE_GEN_CHROMIUM")
    if named:
        return named
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("DURABLE_GEN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (DURABLE_GEN_REQUIRE_BROWSER=1 makes this a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: pip install -e '.[test]'")
    executable = _chromium()
    if executable is None:
        _unavailable("no Chromium found: apt-get install chromium, or set DURABLE_GEN_CHROMIUM")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; fails the test on any uncaught page error or dialog."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    def _dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", _dialog)
    page.errors = errors  # type: ignore[attr-defined]
    page.dialogs = dialogs  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()
    assert not dialogs, f"the page opened dialogs: {dialogs}"


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
