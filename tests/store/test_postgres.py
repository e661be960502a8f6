"""What only PostgreSQL has: a server to reach, a driver to install, threads sharing a pool, and
several writers at once (ids in commit order), plus the CLI on a ``postgresql://`` store."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.core.errors import StoreError
from reputable.evidence.model import Evidence
from reputable.listings.model import Batch, Listing
from reputable.store.dsn import open_dsn
from reputable.store.postgres import POOL_MAX, redact
from reputable.testing import cli, free_port, write_config
from tests.conftest import pg_schema_dsn

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def pg_dsn(pg_database: str | None) -> Iterator[str]:
    """The DSN of a new, empty PostgreSQL schema."""
    yield from pg_schema_dsn(pg_database)


def test_unreachable_server_is_one_clear_error_without_the_password() -> None:
    """No server on the port: StoreError names the DSN (password hidden) and what to check."""
    dsn = f"postgresql://rep:s3cret@127.0.0.1:{free_port()}/rep"
    with pytest.raises(StoreError) as caught:
        open_dsn(dsn)
    text = str(caught.value)
    assert "s3cret" not in text
    assert f"rep:***@127.0.0.1:{dsn.split(':')[3].split('/', maxsplit=1)[0]}/rep" in text
    assert "check store.dsn" in text and "server is running" in text


def test_missing_driver_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psycopg_pool the error names the extra to install, not an ImportError."""
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)
    with pytest.raises(StoreError, match=r"pip install 'reputable\[postgres\]'"):
        open_dsn("postgresql://rep@127.0.0.1:5432/rep")


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://u:pw@h:5432/db?sslmode=require", "postgresql://u:***@h:5432/db?sslmode=require"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgres://:pw@h/db", "postgres://:***@h/db"),
    ],
)  # fmt: skip
def test_redact(dsn: str, shown: str) -> None:
    """Only the password is hidden."""
    assert redact(dsn) == shown


def test_concurrent_writers_lose_nothing_and_cursors_skip_nothing(pg_dsn: str) -> None:
    """Threads writing evidence through one store and through a second store at once: every
    row arrives once, the serial counts every write, and a reader following the id cursor (as
    the policy does) sees every target: ids become visible in commit order."""
    stores = [open_dsn(pg_dsn), open_dsn(pg_dsn)]
    writers, per_writer = 4, 40
    done = threading.Event()
    seen: set[str] = set()
    errors: list[BaseException] = []

    def write(index: int) -> None:
        store = stores[index % 2]
        try:
            for n in range(per_writer):
                address = IPv4Address(f"10.{index}.{n // 250}.{n % 250}")
                item = Evidence(subject=address, cause=Cause.SPAM, source="t", observed_at=NOW)
                assert store.add_evidence([item, item]) == 1
                store.apply(
                    Batch(listings=(Listing(subject=parse_subject(str(address)), cause=Cause.SPAM, reason="r",
                                            source=f"w{index}", listed_at=NOW),)),
                    actor="t", action="list",
                )  # fmt: skip
        except BaseException as exc:
            errors.append(exc)

    def follow() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            targets, cursor = stores[1].evidence_targets_since(cursor)
            seen.update(targets)
            if finished:
                return

    serial = stores[0].serial()
    reader = threading.Thread(target=follow)
    reader.start()
    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()
    try:
        assert errors == []
        expected = {
            f"10.{i}.{n // 250}.{n % 250}" for i in range(writers) for n in range(per_writer)
        }
        assert stores[0].all_targets() == expected
        assert seen == expected
        assert stores[0].serial() == serial + writers * per_writer
        assert len(list(stores[1].listings())) == writers * per_writer
    finally:
        for store in stores:
            store.close()


def test_a_failed_transaction_rolls_back_and_frees_its_connection(pg_dsn: str) -> None:
    """An error inside a write leaves nothing behind, and the thread can write again at once."""
    store = open_dsn(pg_dsn)
    try:
        serial = store.serial()
        for _ in range(15):  # more than the pool's connections: none may leak
            with pytest.raises(StoreError, match="cannot write"):
                store.apply(
                    Batch(listings=(Listing(subject=parse_subject("192.0.2.1"), cause=Cause.SPAM,
                                            reason=None, source="t", listed_at=NOW),)),  # type: ignore[arg-type]
                    actor="t", action="list",
                )  # fmt: skip
        assert store.serial() == serial and list(store.listings()) == []
        store.apply(
            Batch(listings=(Listing(subject=parse_subject("192.0.2.1"), cause=Cause.SPAM,
                                    reason="r", source="t", listed_at=NOW),)),
            actor="t", action="list",
        )  # fmt: skip
        assert store.serial() == serial + 1
    finally:
        store.close()


def test_cli_on_a_postgresql_store(pg_dsn: str, tmp_path: Path) -> None:
    """`list add`/`list show` and `snapshot build` work on store.dsn = postgresql://...; `store
    backup` says to use pg_dump instead of pretending."""
    config = write_config(tmp_path, dns_port=free_port(), extra="")
    text = config.read_text().replace('dsn = "sqlite:///reputable.db"', f'dsn = "{pg_dsn}"')
    config.write_text(text)
    cli(config, "list", "add", "192.0.2.66", "--cause", "spam", "--reason", "seen", "--ttl", "1d")
    shown = cli(config, "list", "show", "--json").stdout
    assert '"192.0.2.66"' in shown and '"seen"' in shown
    build = cli(config, "snapshot", "build").stdout
    assert "1 listings" in build
    backup = cli(config, "store", "backup", str(tmp_path / "b.db"), check=False)
    assert backup.returncode != 0
    assert "pg_dump" in backup.stderr + backup.stdout
    assert not (tmp_path / "b.db").exists()
    assert not (tmp_path / "reputable.db").exists()  # nothing fell back to SQLite


def test_dropped_connections_fail_one_statement_clearly_then_recover(
    pg_dsn: str, pg_database: str
) -> None:
    """The server ends our sessions (restart, failover): a statement on a dead connection is a
    StoreError naming the server, never a driver traceback, and the pool then reconnects."""
    import psycopg

    store = open_dsn(pg_dsn)
    try:
        store.apply(Batch(listings=(Listing(subject=parse_subject("192.0.2.1"), cause=Cause.SPAM,
                                            reason="r", source="t", listed_at=NOW),)),
                    actor="t", action="list")  # fmt: skip
        with psycopg.connect(pg_database, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        failures = 0
        for _ in range(POOL_MAX + 2):  # at most one failure per pooled (dead) connection
            try:
                assert store.serial() >= 2
                break
            except StoreError as exc:
                failures += 1
                assert "PostgreSQL at" in str(exc) and "is the server up" in str(exc)
        assert 1 <= failures <= POOL_MAX  # the dead connection was met, and then replaced
        assert [x.subject_text for x in store.listings()] == ["192.0.2.1"]
    finally:
        store.close()
