"""The report leads with the verdict and the steps, groups lists by status, and fits small screens."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.checker.conftest import GENERIC_IP
from tests.checker.dnsfixture import DnsFixture
from tests.checker.test_cli import run

CHROMIUM = "/usr/bin/chromium"
#: Screenshots land here (gitignored build/), or where REPUTABLE_TEST_ARTIFACTS points.
ARTIFACTS = Path(
    os.environ.get("REPUTABLE_TEST_ARTIFACTS")
    or Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
)
#: Chromium flags: headless, nothing fetched in the background (STYLE: tests stay on loopback).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def test_json_carries_ordered_steps_and_each_lists_removal(
    world: DnsFixture, zone_file: Path
) -> None:
    """--json has the steps (fix, removal paths, re-check) and each listing's removal method."""
    code, out = run(world, zone_file, GENERIC_IP, "--json")
    doc = json.loads(out)
    kinds = [s["kind"] for s in doc["steps"]]
    assert code == 1
    assert kinds[0] == "fix" and kinds[-1] == "recheck"
    assert kinds.index("wait") < kinds.index("provider") < kinds.index("recheck")
    by_zone = {e["zone"]: e for e in doc["listings"]}
    assert by_zone["world.test"]["delisting"] == {
        "method": "network", "expires_after_seconds": None, "paid_express": True,
    }  # fmt: skip
    assert by_zone["expire.test"]["delisting"]["expires_after_seconds"] == 7 * 86400
    assert by_zone["clean.test"]["delisting"] is None


def test_terminal_leads_with_steps_and_explains_each_group_once(
    world: DnsFixture, zone_file: Path
) -> None:
    """Verdict, steps, listings, then refused/timeout lists with one explanation each, clean as a count."""
    _, out = run(world, zone_file, GENERIC_IP)
    flat = " ".join(out.split())
    assert flat.startswith(f"{GENERIC_IP}: listed on 2 of")
    assert out.index("What to do, in order") < out.index("Listed on 2") < out.index("refused (2)")
    assert flat.count("Public resolvers and heavy unregistered use are refused") == 1
    assert "refused (2): quota.test (127.255.255.254), rcode.test" in flat
    assert "clean on 4 (--all lists them)" in flat
    assert "clean.test" not in out.split("clean on 4")[0].split("Listed on 2")[1]


def test_html_groups_clean_lists_in_details(
    world: DnsFixture, zone_file: Path, tmp_path: Path
) -> None:
    """The page shows steps first and clean lists as a count that expands (<details>)."""
    page = tmp_path / "r.html"
    run(world, zone_file, GENERIC_IP, "--html", str(page))
    text = page.read_text()
    assert text.index("What to do, in order") < text.index("Listed on 2")
    assert "<details><summary class=clean>Clean on 4 lists</summary>" in text
    assert text.count("Public resolvers and heavy unregistered use are refused") == 1
    assert "<table" not in text


@pytest.mark.chromium
def test_html_fits_375_and_1280_pixels(world: DnsFixture, zone_file: Path, tmp_path: Path) -> None:
    """Headless Chromium renders the page at 375 and 1,280 px without horizontal scrolling."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip("needs /usr/bin/chromium (Debian package chromium)")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip(
            "needs Playwright for Python (pip install playwright; never playwright install)"
        )
    from playwright.sync_api import sync_playwright  # optional: checked above

    page_file = tmp_path / "report.html"
    run(world, zone_file, GENERIC_IP, "--helo", "mail.example.net", "--html", str(page_file),
        "--domain", "example.net")  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    widths = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for width in (375, 1280):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(page_file.as_uri())
                widths[width] = page.evaluate("document.documentElement.scrollWidth")
                shot = ARTIFACTS / f"checker-report-{width}px.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                page.close()
        finally:
            browser.close()
    assert widths[375] <= 375 and widths[1280] <= 1280, widths
