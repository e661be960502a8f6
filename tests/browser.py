"""Headless Chromium (Debian package) through Playwright, axe-core checks and screenshots.

Shared by the browser tests: never ``playwright install`` (Playwright drives
/usr/bin/chromium), nothing fetched in the background, axe-core read from a local
``npm install axe-core`` (``.ci/run`` installs it into ~/.cache/reputable-test/axe).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
#: Screenshots land here (gitignored build/), or where REPUTABLE_TEST_ARTIFACTS points.
ARTIFACTS = Path(
    os.environ.get("REPUTABLE_TEST_ARTIFACTS")
    or Path(__file__).resolve().parents[1] / "build" / "test-artifacts"
)
#: Chromium flags: headless, nothing fetched in the background (tests stay on loopback).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
AXE_JS = Path(
    os.environ.get("REPUTABLE_AXE_JS")
    or Path.home() / ".cache/reputable-test/axe/node_modules/axe-core/axe.min.js"
)


def need_browser() -> None:
    """Skip the test, naming what to install, when Chromium, Playwright or axe-core is missing."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip("needs /usr/bin/chromium (Debian package chromium)")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip(
            "needs Playwright for Python (pip install playwright; never playwright install)"
        )
    if not AXE_JS.exists():
        pytest.skip(
            f"needs axe-core at {AXE_JS}: npm install --prefix ~/.cache/reputable-test/axe"
            " axe-core@4 (or set REPUTABLE_AXE_JS)"
        )


@contextmanager
def chromium() -> Iterator[Any]:
    """Yield a headless Chromium browser that refuses every request off loopback."""
    from playwright.sync_api import sync_playwright  # optional: checked by need_browser

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def loopback_only(context: Any, outside: list[str]) -> None:
    """Make *context* abort (and record in *outside*) any request that leaves 127.0.0.1."""

    def route(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "data:", "about:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", route)


def axe_violations(page: Any) -> list[str]:
    """Return the serious and critical axe-core violations of *page* (id: help, targets)."""
    page.add_script_tag(content=AXE_JS.read_text(encoding="utf-8"))
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => v.id + ': ' + v.help + ' ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
    )
    return list(found)


def shoot(page: Any, name: str) -> dict[int, int]:
    """Screenshot *page* at 1,280 and 375 px into ARTIFACTS; return the scroll width at each."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    widths = {}
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        widths[width] = int(page.evaluate("document.documentElement.scrollWidth"))
        shot = ARTIFACTS / f"web-{name}-{width}px.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 5_000, shot
    page.set_viewport_size({"width": 1280, "height": 900})
    return widths
