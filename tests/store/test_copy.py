"""`reputable store copy`: every table moves, counts verified, a non-empty target refused."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.core.errors import InputError, StoreError
from reputable.evidence.model import Evidence
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.store.copy import copy_store
from reputable.store.sqlite import SQLiteStore
from reputable.testing import cli, free_port, write_config

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _migrate(dsn: str) -> None:
    SQLiteStore(Path(dsn.removeprefix("sqlite:///"))).close()


def fill(path: Path, hosts: int = 25) -> None:
    """Listings (hosts and a range), an allow entry, evidence, a cursor and a token."""
    store = SQLiteStore(path)
    try:
        store.apply(
            Batch(
                listings=[
                    Listing(
                        subject=parse_subject(f"198.51.100.{i}"),
                        cause=Cause.SPAM,
                        reason=f"trap {i}",
                        source="test",
                        listed_at=NOW,
                        expires_at=NOW + timedelta(days=3) if i % 2 else None,
                    )
                    for i in range(1, hosts + 1)
                ]
                + [
                    Listing(
                        subject=parse_subject("203.0.113.0/24"),
                        cause=Cause.NETWORK,
                        reason="escalated",
                        source="policy:network:203.0.113.0/24",
                        listed_at=NOW,
                        expires_at=None,
                    )
                ],
                allows=[
                    AllowEntry(
                        subject=parse_subject("198.51.100.200"),
                        note="our relay",
                        source="operator",
                        created_at=NOW,
                        expires_at=None,
                    )
                ],
            ),
            actor="test",
            action="list",
        )
        store.add_evidence(
            Evidence(
                subject=parse_subject("192.0.2.5"),  # type: ignore[arg-type]
                cause=Cause.SPAM,
                source="traps",
                observed_at=NOW - timedelta(minutes=i),
                weight=1.0,
                detail={"trap": f"t{i}@example.net"},
            )
            for i in range(7)
        )
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO cursors (name, value) VALUES ('policy', 5)")


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Return every table's rows (meta's serial left out), in a stable order."""
    with sqlite3.connect(path) as db:
        names = [
            n
            for (n,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            n: sorted(db.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr)
            for n in names
            if n != "meta"
        }


def test_copy_moves_every_row_in_batches(tmp_path: Path) -> None:
    source, target = tmp_path / "a.db", tmp_path / "b.db"
    fill(source)
    seen: list[tuple[str, int]] = []
    result = copy_store(
        f"sqlite:///{source}",
        f"sqlite:///{target}",
        migrate=_migrate,
        batch=4,
        progress=lambda table, rows: seen.append((table, rows)),
    )
    assert dump(target) == dump(source)
    rows = {t.name: t.rows for t in result.tables}
    assert rows["listings"] == 26 and rows["evidence"] == 7 and rows["allow"] == 1
    assert result.tables[-1].name == "meta"  # the serial lands last
    assert ("listings", 4) in seen and ("listings", 26) in seen  # batches of 4, then the rest
    assert result.serial == SQLiteStore(target).serial() >= SQLiteStore(source).serial()


def test_copy_refuses_a_target_with_data_unless_forced(tmp_path: Path) -> None:
    source, target = tmp_path / "a.db", tmp_path / "b.db"
    fill(source)
    fill(target, hosts=3)
    with sqlite3.connect(target) as db:
        db.execute("INSERT INTO hosting VALUES ('192.0.2.99', 'only-in-target.example')")
    before = dump(target)
    with pytest.raises(InputError, match=r"already holds data .*--force"):
        copy_store(f"sqlite:///{source}", f"sqlite:///{target}", migrate=_migrate)
    assert dump(target) == before  # untouched
    old_serial = SQLiteStore(target).serial()
    result = copy_store(f"sqlite:///{source}", f"sqlite:///{target}", migrate=_migrate, force=True)
    assert dump(target) == dump(source)  # replaced, not merged
    assert result.serial > old_serial  # nodes following the target see a change


def test_copy_errors_name_what_is_wrong(tmp_path: Path) -> None:
    fill(tmp_path / "a.db")
    a = f"sqlite:///{tmp_path / 'a.db'}"
    with pytest.raises(StoreError, match=r"no SQLite store at .*missing\.db"):
        copy_store(f"sqlite:///{tmp_path / 'missing.db'}", a, migrate=_migrate)
    with pytest.raises(StoreError, match="same store"):
        copy_store(a, a, migrate=_migrate)
    with pytest.raises(StoreError, match="handles sqlite:///FILE and postgresql://"):
        copy_store(a, "mysql://127.0.0.1/x", migrate=lambda dsn: None)
    target = tmp_path / "old.db"
    SQLiteStore(target).close()
    with sqlite3.connect(target) as db:
        db.execute(
            "DELETE FROM schema_version WHERE version = (SELECT MAX(version) FROM schema_version)"
        )
    with pytest.raises(StoreError, match="schema version"):
        copy_store(a, f"sqlite:///{target}", migrate=lambda dsn: None)


def test_cli_copy_json_and_refusal(tmp_path: Path) -> None:
    config = write_config(tmp_path, dns_port=free_port())
    cli(config, "list", "add", "198.51.100.7", "--cause", "spam", "--reason", "trap")
    target = tmp_path / "copy.db"
    out = json.loads(cli(config, "store", "copy", "--to", f"sqlite:///{target}", "--json").stdout)
    assert {t["name"]: t["rows"] for t in out["tables"]}["listings"] == 1
    assert out["rows"] >= 3 and out["target"] == f"sqlite:///{target}"
    again = cli(config, "store", "copy", "--to", f"sqlite:///{target}", check=False)
    assert again.returncode == 2  # nothing changed; --force or a fresh store is the user's call
    assert "already holds data" in again.stderr and "Traceback" not in again.stderr


def _answers(port: int, names: list[str]) -> dict[str, tuple[set[str], set[str]]]:
    """Return the A and TXT sets the server on *port* gives for each of *names*."""
    import dns.message
    import dns.query

    out = {}
    for name in names:
        sets: list[set[str]] = []
        for rdtype in ("A", "TXT"):
            reply = dns.query.udp(
                dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=3
            )
            sets.append({r.to_text() for rrset in reply.answer for r in rrset})
        out[name] = (sets[0], sets[1])
    return out


@pytest.mark.postgres
@pytest.mark.slow
def test_round_trip_sqlite_postgresql_sqlite(tmp_path: Path) -> None:
    from reputable.testing import RunningServer
    from tests.store.pgnodes_db import fresh_database

    names = [f"{i}.100.51.198.bl.reputable.test" for i in (1, 2, 25, 26, 200)] + [
        "5.113.0.203.bl.reputable.test",  # inside the listed /24
        "77.2.0.192.bl.reputable.test",  # never listed
    ]
    with fresh_database() as pg:
        configs = []
        for name, dsn in (("a", None), ("pg", pg), ("c", None)):
            (tmp_path / name).mkdir()
            config = write_config(tmp_path / name, dns_port=free_port())
            if dsn is not None:
                config.write_text(
                    config.read_text().replace('dsn = "sqlite:///reputable.db"', f'dsn = "{dsn}"')
                )
            configs.append(config)
        original, copied = tmp_path / "a" / "reputable.db", tmp_path / "c" / "reputable.db"
        fill(original)
        there = json.loads(cli(configs[0], "store", "copy", "--to", pg, "--json").stdout)
        back = json.loads(
            cli(configs[1], "store", "copy", "--to", f"sqlite:///{copied}", "--json").stdout
        )
        counts = {t["name"]: t["rows"] for t in there["tables"]}
        assert counts == {t["name"]: t["rows"] for t in back["tables"]}
        assert counts["listings"] == 26 and counts["evidence"] == 7
        assert dump(copied) == dump(original)  # every row, every value, both ways
        seen = []
        for config in configs:
            with RunningServer(config) as server:
                assert server.proc is not None
                seen.append(
                    _answers(
                        int(config.read_text().split('listen = ["127.0.0.1:')[1].split('"')[0]),
                        names,
                    )
                )
        assert seen[0] == seen[1] == seen[2]
        assert seen[0][names[0]][0] == {"127.0.0.2"}  # and they answer what was listed
        assert seen[0][names[5]][0] == {"127.0.0.9"}
        assert seen[0][names[6]] == (set(), set())
        # The copied ids moved PostgreSQL's identity sequences past them: new rows still go in.
        cli(configs[1], "evidence", "add", "192.0.2.66", "--cause", "spam", "--source", "t")
        cli(configs[1], "list", "add", "192.0.2.67", "--cause", "spam", "--reason", "after")
