"""Every reporting command: --json parses with the documented fields, --plain is one line a record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.conftest import sqlite_only


def test_list_add_and_remove(cli: Cli) -> None:
    """list add/remove --json print the listing and the count removed; --plain one line."""
    added = cli("list", "add", "198.51.100.9", "-c", "spam", "--ttl", "7d", "--json")
    assert added.code == 0
    doc = added.json()
    assert (doc["subject"], doc["cause"], doc["code"]) == ("198.51.100.9", "spam", "127.0.0.2")
    assert doc["until"] is not None and doc["until"] == doc["expires_at"]
    plain = cli("list", "add", "198.51.100.10", "-c", "spam", "--plain")
    assert plain.out.count("\n") == 1 and plain.out.startswith("198.51.100.10\tspam\t")
    removed = cli("list", "remove", "198.51.100.9", "--json")
    assert removed.json() == {"subject": "198.51.100.9", "removed": 1}


def test_evidence_add_import_and_policy_run(cli: Cli, tmp_path: Path) -> None:
    """evidence add/import and policy run report what they did as JSON."""
    added = cli(
        "evidence", "add", "198.51.100.20", "-c", "spam", "--at", "2026-12-01T00:00:00Z",
        "--json",
    ).json()  # fmt: skip
    assert added["stored"] is True and added["cause"] == "spam"
    assert added["at"] == "2026-12-01T00:00:00Z" and added["target"] == "198.51.100.20"
    again = cli(
        "evidence", "add", "198.51.100.20", "-c", "spam", "--at", "2026-12-01T00:00:00Z",
        "--json",
    ).json()  # fmt: skip
    assert again["stored"] is False
    lines = tmp_path / "ev.jsonl"
    good = {
        "subject": "198.51.100.21",
        "cause": "spam",
        "source": "t",
        "at": "2026-12-01T00:00:00Z",
    }
    lines.write_text(json.dumps(good) + "\n" + "{not json\n", encoding="utf-8")
    imported = cli("evidence", "import", str(lines), "--json")
    assert imported.code == 1  # a bad line: the good one still lands
    doc = imported.json()
    assert (doc["lines"], doc["stored"], doc["bad"]) == (2, 1, 1)
    assert doc["errors"][0].startswith(f"{lines}:2:")
    run = cli("policy", "run", "--json").json()
    assert set(run) == {
        "evaluated",
        "seconds",
        "listed",
        "escalated",
        "hosting",
        "written",
        "delisted",
    }
    assert run["evaluated"] >= 2


def test_explain_exit_codes_and_plain(cli: Cli) -> None:
    """explain exits 1 when the subject is listed and 0 when not; --plain prints its listings."""
    cli("list", "add", "198.51.100.30", "-c", "spam", "-r", "a reason")
    listed = cli("explain", "198.51.100.30", "--json")
    assert listed.code == 1 and listed.json()["listed"] is True
    [line] = cli("explain", "198.51.100.30", "--plain").lines()
    assert line.split("\t")[:3] == ["198.51.100.30", "spam", "127.0.0.2"]
    clean = cli("explain", "192.0.2.55", "--json")
    assert clean.code == 0 and clean.json()["listed"] is False
    assert cli("explain", "192.0.2.55", "--plain").out == ""


def test_delist_request_list_and_decisions(cli: Cli) -> None:
    """delist request/list/deny/approve speak JSON with id, subject, status."""
    cli("list", "add", "198.51.100.40", "-c", "spam")
    cli("evidence", "add", "198.51.100.40", "-c", "spam")
    asked = cli("delist", "request", "198.51.100.40", "--contact", "a@example.org", "--json")
    assert asked.code == 0, asked.err
    doc = asked.json()
    assert doc["subject"] == "198.51.100.40" and doc["status"] in {"pending", "granted"}
    rows = cli("delist", "list", "--status", "", "--json").json()
    assert rows[0]["id"] == doc["id"] and rows[0]["since"] == rows[0]["created_at"]
    plain = cli("delist", "list", "--status", "", "--plain").lines()
    assert plain[0].split("\t")[:2] == [str(doc["id"]), "198.51.100.40"]
    if doc["status"] == "pending":
        denied = cli("delist", "deny", str(doc["id"]), "--why", "still spamming", "--json")
        assert denied.json()["status"] == "denied"


def test_hosting_import_import_and_exports(cli: Cli, tmp_path: Path) -> None:
    """hosting import, import rbldnsd and the exports describe their files with --json."""
    pairs = tmp_path / "hosting.csv"
    pairs.write_text("198.51.100.50,shop.example\n", encoding="utf-8")
    hosted = cli("hosting", "import", str(pairs), "--json").json()
    assert (hosted["pairs"], hosted["stored"], hosted["bad"], hosted["errors"]) == (1, 1, 0, [])
    data = tmp_path / "bl.ip4set"
    data.write_text(":127.0.0.2:listed\n203.0.113.0/24\n", encoding="utf-8")
    imported = cli("import", "rbldnsd", str(data), "--zone", "bl.reputable.test", "--json")
    assert imported.code == 0, imported.err
    assert imported.json()["listings"] == 1 and imported.json()["imported"] is True
    nft = tmp_path / "bl.nft"
    written = cli("export", "nftables", "-o", str(nft), "--json").json()
    assert written == {"path": str(nft), "kind": "nftables", "bytes": nft.stat().st_size}
    assert "203.0.113.0/24" in nft.read_text(encoding="utf-8")
    refused = cli("export", "nftables", "--json")
    assert refused.code == 2 and "--output" in refused.err
    zone = tmp_path / "bl.zone"
    described = cli("export", "zone", "-z", "bl.reputable.test", "-o", str(zone), "--json").json()
    assert described["zone"] == "bl.reputable.test" and described["records"] >= 1
    base = tmp_path / "rbl"
    exported = cli("export", "rbldnsd", "-z", "bl.reputable.test", "-o", str(base), "--json")
    doc = exported.json()
    assert doc["entries"] >= 1 and all(Path(p).exists() for p in doc["paths"])
    listed = cli("export", "rbldnsd", "-z", "bl.reputable.test", "-o", str(base), "--plain")
    assert listed.lines() == doc["paths"]


@pytest.mark.parametrize(
    ("text", "subjects"),
    [
        (":127.0.0.2:listed\n203.0.113.0/30\n!203.0.113.1\n", ["203.0.113.0", "203.0.113.2/31"]),
        (":127.0.0.2:spam!\n203.0.113.0/30\n", ["203.0.113.0/30"]),  # "!" not an exclusion
        (":127.0.0.2:listed\n203.0.113.0/30\n", ["203.0.113.0/30"]),  # no "!": no pre-pass
    ],
)
def test_import_rbldnsd_cuts_exclusions_out_of_its_listings(
    cli: Cli, tmp_path: Path, text: str, subjects: list[str]
) -> None:
    """An rbldnsd ``!`` line is cut out of the file's own listings, never an allowlist entry."""
    data = tmp_path / "bl.ip4set"
    data.write_text(text, encoding="utf-8")
    imported = cli("import", "rbldnsd", str(data), "--zone", "bl.reputable.test", "--json")
    assert imported.code == 0, imported.err
    rows = cli("list", "show", "--json").json()
    assert sorted(r["subject"] for r in rows) == subjects
    assert cli("allow", "show", "--json").json() == []


@pytest.mark.parametrize("head", [b"", b"!192.0.2.9\n"])  # with and without the pre-pass
def test_import_rbldnsd_names_the_line_that_is_not_utf8(
    cli: Cli, tmp_path: Path, head: bytes
) -> None:
    data = tmp_path / "bl.ip4set"
    data.write_bytes(head + b"192.0.2.1\n192.0.2.2\n192.0.2.3 :2:caf\xe9\n192.0.2.4\n")
    bad = 3 + head.count(b"\n")
    imported = cli("import", "rbldnsd", str(data), "--zone", "bl.reputable.test")
    assert imported.code == 2
    assert f"{data}:{bad}: not UTF-8 text" in imported.err
    assert cli("list", "show", "--json").json() == []


@sqlite_only  # store backup/vacuum are SQLite's (PostgreSQL: pg_dump, tests/store/test_maintenance.py)
def test_tokens_store_snapshot_and_version(cli: Cli, tmp_path: Path) -> None:
    """token add/list/revoke, store backup/vacuum, snapshot build and version speak JSON."""
    token = cli("token", "add", "ci", "--scope", "admin", "--json").json()
    assert token["name"] == "ci" and token["scopes"] == ["admin"] and len(token["secret"]) > 20
    [row] = cli("token", "list", "--json").json()
    assert row["name"] == "ci" and row["since"] == row["created_at"] and row["revoked_at"] is None
    assert cli("token", "list").lines()[0].split("\t")[:2] == ["ci", "admin"]
    assert cli("token", "revoke", "ci", "--json").json() == {"name": "ci", "revoked": True}
    copy = tmp_path / "copy.db"
    backed = cli("store", "backup", str(copy), "--json").json()
    assert backed["target"] == str(copy) and backed["bytes"] == copy.stat().st_size
    again = cli("store", "backup", str(copy))
    assert again.code == 2 and "exists" in again.err
    vacuumed = cli("store", "vacuum", "--json").json()
    assert set(vacuumed) == {"path", "bytes_before", "bytes_after"}
    built = cli("snapshot", "build", "--json").json()
    assert built["serial"] >= 1 and Path(built["path"]).exists()
    version = cli("version", "--json").json()
    assert set(version) == {"version"}
    samples = cli("stats", "--json").json()
    assert any(s["name"] == "reputable_dns_workers" for s in samples)
    assert all(len(line.split("\t")) == 3 for line in cli("stats", "--plain").lines())


def test_feed_add_list_remove(cli: Cli, tmp_path: Path) -> None:
    """feed add/list/remove --json: the sync result, the feed rows, what was removed."""
    source = tmp_path / "list.txt"
    source.write_text("192.0.2.1\n192.0.2.2\n", encoding="utf-8")
    added = cli("feed", "add", "local", source.as_uri(), "--kind", "plain", "--json")
    assert added.code == 0, added.err
    doc = added.json()
    assert doc["name"] == "local" and doc["sync"][0]["added"] == 2
    [row] = cli("feed", "list", "--json").json()
    assert (row["name"], row["entries"]) == ("local", 2)
    [line] = cli("feed", "list").lines()
    assert line.split("\t")[:3] == ["local", "plain", "2"]
    source.write_text("<html>oops</html>\n", encoding="utf-8")
    broken = cli("feed", "sync", "--plain")
    assert broken.code == 3  # a runtime failure; the last good data is kept
    assert broken.lines()[0].split("\t")[:2] == ["local", "error"]
    assert cli("feed", "remove", "local", "--json").json() == {"name": "local", "removed": 2}


def test_ingest_summaries(cli: Cli, tmp_path: Path) -> None:
    """ingest maillog/netlog/arf --json print their summary; --plain key<TAB>value lines."""
    log = tmp_path / "mail.log"
    log.write_text(
        "Dec  5 10:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.9]\n",
        encoding="utf-8",
    )
    mail = cli(
        "ingest", "maillog", str(log), "--dry-run", "--json", "--now", "2026-12-05T12:00:00Z"
    )
    assert mail.code == 0, mail.err
    doc = mail.json()
    assert doc["lines"] == 1 and doc["dry_run"] is True and doc["stored"] == 0
    plain = dict(
        line.split("\t", 1)
        for line in cli("ingest", "maillog", str(log), "--dry-run", "--plain").lines()
    )
    assert plain["lines"] == "1" and plain["dry_run"] == "yes"
    auth = tmp_path / "auth.log"
    auth.write_text(
        "Dec  5 10:00:00 host sshd[2]: Failed password for root from 192.0.2.8 port 22 ssh2\n",
        encoding="utf-8",
    )
    net = cli("ingest", "netlog", str(auth), "--format", "sshd", "--dry-run", "--json")
    assert net.code == 0, net.err
    assert net.json()["lines"] == 1 and net.json()["dry_run"] is True
    mbox = tmp_path / "empty.mbox"
    mbox.write_text("", encoding="utf-8")
    arf = cli("ingest", "arf", str(mbox), "--dry-run", "--json")
    assert arf.code == 0, arf.err
    doc = arf.json()
    assert doc["evidence"] == 0 and doc["dry_run"] is True and isinstance(doc["malformed"], list)
    wrong = cli("ingest", "maillog", str(log), "--from-start")
    assert wrong.code == 2 and "--follow" in wrong.err
