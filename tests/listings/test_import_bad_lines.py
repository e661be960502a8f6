"""Importers keep the good lines: bad ones are reported by number, never a traceback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reputable.config import DEFAULT_TOML, Config, parse_config
from reputable.evidence.parsers.feed_model import CsvMapping, FeedDefinition
from reputable.listings.feeds import SyncReport, sync_feeds
from reputable.store.dsn import open_dsn
from reputable.testing import cli, write_config
from tests.conftest import use_store

SAMPLES = Path(__file__).parents[1] / "evidence" / "feed_samples"
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
HUGE = "x" * (200 * 1024)  # over csv's 128 KiB field limit and our 64 KiB line limit


def _config(tmp_path: Path) -> Config:
    path = tmp_path / "reputable.toml"
    resolver = '[resolver]\nnameserver = "127.0.0.1:9"\ntimeout = "0.2s"\n'
    path.write_text(DEFAULT_TOML + "\n[feeds]\nmax_invalid = 0.5\n" + resolver)
    return parse_config(path.read_text(), path)


def _sync(
    tmp_path: Path, body: bytes, kind: str, *, dsn: str | None = None, **kw: object
) -> tuple[SyncReport, set[str]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    feed = tmp_path / f"feed.{kind}"
    feed.write_bytes(body)
    config = _config(tmp_path)
    # Without *dsn*: a SQLite file (the parser tests; the store's half runs on both back-ends).
    store = open_dsn(dsn or f"sqlite:///{tmp_path / 'r.db'}")
    try:
        store.add_feed(
            FeedDefinition(
                name="f", url=feed.as_uri(), kind=kind, refresh=timedelta(hours=1), **kw
            ),  # type: ignore[arg-type]
            now=NOW,
        )
        [report] = asyncio.run(sync_feeds(config, store, names=["f"], now=NOW))
        subjects = {i.subject_text for i in store.listings_where(source_prefix="feed:f")}
    finally:
        store.close()
    return report, subjects


def _with_huge_line(sample: str, after: int) -> bytes:
    lines = (SAMPLES / sample).read_text().splitlines()
    lines.insert(after, HUGE)
    return ("\n".join(lines) + "\n").encode()


def test_csv_feed_keeps_good_rows_around_a_huge_line(tmp_path: Path, store_dsn: str) -> None:
    """A 200 KiB line in a CSV feed is reported by number; the good rows are listed."""
    mapping = CsvMapping(column="address", reason_column="why", delimiter=";", header=True)
    report, subjects = _sync(
        tmp_path, _with_huge_line("generic.csv", 3), "csv", dsn=store_dsn, csv=mapping
    )
    assert report.status == "updated", report.error
    assert subjects == {"192.0.2.10", "192.0.2.11"}
    assert any("line 4" in s and "longer than" in s for s in report.skipped), report.skipped


def test_urlhaus_and_phishtank_keep_good_rows_around_a_huge_line(
    tmp_path: Path, new_store_dsn: Callable[[str], str]
) -> None:
    """URLhaus and PhishTank syncs with a 200 KiB line still list every good URL's domain."""
    report, subjects = _sync(
        tmp_path / "u", _with_huge_line("urlhaus.csv", 7), "urlhaus", dsn=new_store_dsn("u")
    )
    _clean, expected = _sync(
        tmp_path / "u0", (SAMPLES / "urlhaus.csv").read_bytes(), "urlhaus", dsn=new_store_dsn("u0")
    )
    assert report.status == "updated" and subjects == expected and expected
    assert any("line 8" in s for s in report.skipped), report.skipped
    report, subjects = _sync(
        tmp_path / "p", _with_huge_line("phishtank.csv", 2), "phishtank", dsn=new_store_dsn("p")
    )
    _clean, expected = _sync(
        tmp_path / "p0",
        (SAMPLES / "phishtank.csv").read_bytes(),
        "phishtank",
        dsn=new_store_dsn("p0"),
    )
    assert report.status == "updated" and subjects == expected and expected
    assert any("line 3" in s for s in report.skipped), report.skipped


def test_binary_csv_feed_is_a_clear_error(tmp_path: Path, store_dsn: str) -> None:
    """Random bytes given to a CSV feed fail the sync with a message, not an exception."""
    body = os.urandom(64 * 1024)
    report, subjects = _sync(tmp_path, body, "csv", dsn=store_dsn)
    assert report.status == "error" and subjects == set()
    assert report.error is not None and "unreadable" in report.error


def _hosting_file(tmp_path: Path) -> Path:
    path = tmp_path / "hosting.csv"
    path.write_bytes(
        b"# ip,domain\n"
        b"192.0.2.1,one.example\n" + HUGE.encode() + b"\n192.0.2.2,two.example\n"
        b"\x00\x01\x02binary\xff\n"
        b"not-an-ip,three.example\n"
        b"192.0.2.3,three.example\n"
    )
    return path


def test_hosting_import_keeps_good_lines_and_names_bad_ones(tmp_path: Path, store_dsn: str) -> None:
    """hosting import stores the 3 good pairs and reports lines 3, 5 and 6 with reasons."""
    config = use_store(write_config(tmp_path, dns_port=5300), store_dsn)
    result = cli(config, "hosting", "import", str(_hosting_file(tmp_path)), check=False)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "3 pairs read, 3 new, 3 bad lines" in out, out
    assert "hosting.csv:3: line longer than 65536 bytes" in out
    assert "hosting.csv:5:" in out and "hosting.csv:6: bad IP address 'not-an-ip'" in out
    again = cli(config, "hosting", "import", str(_hosting_file(tmp_path)), check=False)
    assert "3 pairs read, 0 new" in again.stdout  # they were stored the first time


def test_hosting_import_strict_stores_nothing(tmp_path: Path, store_dsn: str) -> None:
    """With --strict one bad line means nothing is stored; without it the good lines land."""
    config = use_store(write_config(tmp_path, dns_port=5300), store_dsn)
    strict = cli(config, "hosting", "import", "--strict", str(_hosting_file(tmp_path)), check=False)
    assert strict.returncode == 2 and "nothing stored (--strict)" in strict.stdout
    normal = cli(config, "hosting", "import", str(_hosting_file(tmp_path)), check=False)
    assert "3 new" in normal.stdout


def test_hosting_import_reads_standard_input_once(tmp_path: Path) -> None:
    """`hosting import -` reads a pipe (once) and stores its pairs."""
    config = write_config(tmp_path, dns_port=5300)
    result = subprocess.run(
        [sys.executable, "-m", "reputable", "--config", str(config), "hosting", "import", "-"],
        input=b"192.0.2.9,nine.example\n192.0.2.10,ten.example\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert b"<stdin>: 2 pairs read, 2 new, 0 bad lines" in result.stdout


@pytest.mark.parametrize("kind", ["plain", "drop", "openphish", "urlhaus", "phishtank", "csv"])
def test_every_feed_kind_survives_binary_input(tmp_path: Path, kind: str) -> None:
    """Every feed parser turns random bytes into an error report or entries, never a crash."""
    report, _subjects = _sync(tmp_path, os.urandom(32 * 1024) + b"\n" + HUGE.encode(), kind)
    assert report.status in ("error", "updated", "unchanged")
