"""Session-wide guard: tests may only talk to loopback (127.0.0.0/8, ::1) or Unix sockets."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from hypothesis import settings

from reputable.store.dsn import open_dsn
from reputable.store.sqlite import SQLStore

# Property tests check what is generated, not how fast: Hypothesis' default 200 ms deadline per
# example fails them on a loaded machine (seen at load 16) without saying anything about the code.
settings.register_profile("reputable", deadline=None)
settings.load_profile("reputable")


# -- parallel runs (pytest-xdist) -----------------------------------------------------------------
# pyproject's addopts run the suite on several workers with ``--dist loadgroup``. The scheduler
# below keeps each test file on one worker (as ``--dist loadfile`` does: a module- or
# session-scoped server starts once, not once a worker), except that tests carrying the same
# ``xdist_group`` mark all go to one worker, one after the other, whatever their files. Tests
# marked ``serial`` run while no other test runs (pytest_runtest_protocol below). ``-n0`` runs
# everything in this process, for debugging.


#: Words that mark a test file as long-running (servers, subprocess peers, many trials): such
#: files are handed out first, so that none of them starts last and runs on alone at the end.
_LONG_RUNNING = (
    *(f"pytest.mark.{m}" for m in ("slow", "netns", "chromium", "rbldnsd", "nsd", "crowdsec")),
    *("RunningServer", "start_api", "Api)", "two_nodes"),
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Schedule by file, or by ``xdist_group`` where a test has one (``--dist loadgroup``)."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    def long_running(scope: str) -> bool:
        if scope.startswith("group:"):
            return True
        try:
            text = (config.rootpath / scope).read_text(encoding="utf-8")
        except OSError:
            return False
        return any(word in text for word in _LONG_RUNNING)

    class FileOrGroupScheduling(LoadGroupScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            if nodeid.rfind("@") > nodeid.rfind("]"):
                return "group:" + nodeid.rsplit("@", 1)[-1]
            return nodeid.split("::", 1)[0]

        def _assign_work_unit(self, node: Any) -> None:
            if not self.ordered:  # once, when the first units go out: long-running files first
                self.ordered = True
                units = sorted(
                    self.workqueue.items(), key=lambda kv: (not long_running(kv[0]), -len(kv[1]))
                )
                self.workqueue.clear()
                self.workqueue.update(units)
            super()._assign_work_unit(node)

    return FileOrGroupScheduling(config, log)


#: Lock files shared by the workers of one run (xdist names the run in PYTEST_XDIST_TESTRUNUID).
_RUN_LOCKS = Path(tempfile.gettempdir()) / "reputable-test-locks"


def pytest_configure(config: pytest.Config) -> None:
    """In the controlling process: remove the lock files of runs older than a day."""
    if os.environ.get("PYTEST_XDIST_WORKER") or not _RUN_LOCKS.is_dir():
        return
    for old in _RUN_LOCKS.iterdir():
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > 86400:
                old.unlink()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """Run ``serial`` tests alone: no test of another worker of this run runs meanwhile.

    Every test holds a shared lock while it runs (set-up and tear-down included); a test
    marked ``serial`` (its wall-clock limit would measure the other workers' load, not the
    code) holds it exclusively. A gate lock in front keeps the serial test from waiting for
    ever behind a stream of others: once it holds the gate, no new test starts until it ends.
    """
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:  # one process (-n0, -p no:xdist): nothing runs beside this test
        return (yield)
    _RUN_LOCKS.mkdir(mode=0o1777, exist_ok=True)
    exclusive = item.get_closest_marker("serial") is not None
    with (
        open(_RUN_LOCKS / f"{run}.gate", "a+b") as gate,
        open(_RUN_LOCKS / f"{run}.run", "a+b") as running,
    ):
        if exclusive:
            fcntl.flock(gate, fcntl.LOCK_EX)
            fcntl.flock(running, fcntl.LOCK_EX)
        else:
            fcntl.flock(gate, fcntl.LOCK_SH)
            fcntl.flock(running, fcntl.LOCK_SH)
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            return (yield)
        finally:
            fcntl.flock(running, fcntl.LOCK_UN)
            fcntl.flock(gate, fcntl.LOCK_UN)


class NetworkGuardError(AssertionError):
    """A test tried to reach an address outside loopback."""


def _destination_allowed(family: int, address: Any) -> bool:
    """True for Unix sockets and numeric loopback destinations; host names are refused."""
    if family == getattr(socket, "AF_UNIX", object()):
        return True
    if family == getattr(socket, "AF_NETLINK", object()):
        return True
    if not isinstance(address, tuple) or not address:
        return False
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        ip = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        # A name would be resolved by the machine's resolver: refused on purpose.
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _check(sock: socket.socket, address: Any) -> None:
    if not _destination_allowed(sock.family, address):
        raise NetworkGuardError(f"test tried to reach non-loopback address {address!r}")


def _wrap(original: Callable[..., Any], address_index: int) -> Callable[..., Any]:
    def guarded(self: socket.socket, *args: Any) -> Any:
        if len(args) > address_index:
            _check(self, args[address_index])
        return original(self, *args)

    guarded.__name__ = original.__name__
    return guarded


@pytest.fixture(autouse=True, scope="session")
def own_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the remembered config checks (config.check_schema) out of the runner's home.

    The suite writes hundreds of configurations: in ~/.cache they would push out the
    user's own. Set in the environment, so the CLI and serve processes tests start share it.
    """
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = saved


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    """Fail any test whose socket connect/sendto/sendmsg aims outside loopback."""
    cls = socket.socket
    saved = {name: getattr(cls, name) for name in ("connect", "connect_ex", "sendto", "sendmsg")}
    cls.connect = _wrap(saved["connect"], 0)  # type: ignore[method-assign]  # test-only patch
    cls.connect_ex = _wrap(saved["connect_ex"], 0)  # type: ignore[method-assign]  # same

    # sendto(data, address) or sendto(data, flags, address): the address is the last argument.
    def sendto(self: socket.socket, *args: Any) -> Any:
        if len(args) >= 2:
            _check(self, args[-1])
        return saved["sendto"](self, *args)

    def sendmsg(self: socket.socket, *args: Any) -> Any:
        if len(args) >= 4 and args[3] is not None:
            _check(self, args[3])
        return saved["sendmsg"](self, *args)

    cls.sendto = sendto  # type: ignore[method-assign]  # test-only patch
    cls.sendmsg = sendmsg  # type: ignore[method-assign]  # test-only patch
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None:
            text = host.decode() if isinstance(host, bytes) else str(host)
            try:
                ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                raise NetworkGuardError(
                    f"test tried to resolve host name {text!r}; use a numeric loopback address"
                ) from None
        return real_getaddrinfo(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(cls, name, fn)
        socket.getaddrinfo = real_getaddrinfo


# -- stores on both back-ends ---------------------------------------------------------------------
#: The PostgreSQL server the PostgreSQL half of the store tests uses (a maintenance database on it:
#: each session creates its own database there, each test its own schema in that database).
PG_DSN = os.environ.get("REPUTABLE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
#: Prefix of the per-session database (engineers sharing a server tell theirs apart by it).
PG_DB_PREFIX = os.environ.get("REPUTABLE_TEST_PG_PREFIX", "rep_test_")
STORE_BACKENDS = ("sqlite", "postgresql")


def _with_database(dsn: str, database: str, options: str = "") -> str:
    parts = urlsplit(dsn)
    query = parts.query
    if options:
        query = (query + "&" if query else "") + "options=" + quote(options)
    return urlunsplit(parts._replace(path="/" + database, query=query))


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """DSN of a fresh database for this session on :data:`PG_DSN`, or None when no server answers.

    The session holds a connection to it until the end, then drops it (WITH (FORCE)); old
    ones of the same prefix left by killed sessions are dropped first.
    """
    try:
        import psycopg
    except ImportError:
        yield None
        return
    try:
        admin = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        yield None
        return
    # Unique per session and per xdist worker (each worker is a session of its own).
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{PG_DB_PREFIX}{worker}_{secrets.token_hex(5)}"
    with admin:
        _drop_abandoned(admin)
        admin.execute(f'CREATE DATABASE "{name}"')
        dsn = _with_database(PG_DSN, name)
        keeper = psycopg.connect(dsn, autocommit=True)  # marks the database as in use
        try:
            yield dsn
        finally:
            from reputable.store.postgres import close_pool

            for schema_dsn in list(_PG_SCHEMAS):
                close_pool(schema_dsn)
            keeper.close()
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_abandoned(admin: Any) -> None:
    """Drop databases of :data:`PG_DB_PREFIX` older than 6 hours that nobody is connected to.

    A suite takes minutes, so those were left by killed runs. Their age comes from the
    directory's PG_VERSION file (superuser or pg_read_server_files); without that right the
    clean-up is skipped.
    """
    import psycopg

    try:
        stale = admin.execute(
            "SELECT datname FROM pg_database d WHERE datname LIKE %s AND NOT EXISTS"
            " (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)"
            " AND (pg_stat_file('base/' || d.oid || '/PG_VERSION')).modification"
            " < now() - interval '6 hours'",
            (PG_DB_PREFIX.replace("_", r"\_") + "%",),
        ).fetchall()
    except psycopg.Error:
        return
    for (stale_name,) in stale:
        with contextlib.suppress(psycopg.Error):
            admin.execute(f'DROP DATABASE "{stale_name}"')


_PG_SCHEMAS: list[str] = []


def pg_schema_dsn(database: str | None) -> Iterator[str]:
    """Yield the DSN of a new, empty schema in the session's database; drop it afterwards."""
    if database is None:
        why = f"no PostgreSQL server answers at {PG_DSN} (set REPUTABLE_TEST_PG_DSN to one)"
        if os.environ.get("REPUTABLE_TEST_REQUIRE_PG"):
            pytest.fail(why + "; REPUTABLE_TEST_REQUIRE_PG is set (CI)")
        pytest.skip(why)
    import psycopg

    from reputable.store.postgres import close_pool

    schema = f"t_{secrets.token_hex(6)}"
    # Each test's tables live in its own schema (search_path); commits need not wait for the
    # disk (synchronous_commit=off): a crashed test server loses nothing a test needs.
    dsn = _with_database(
        database,
        urlsplit(database).path.lstrip("/"),
        f"-csearch_path={schema} -csynchronous_commit=off",
    )
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    _PG_SCHEMAS.append(dsn)
    try:
        yield dsn
    finally:
        close_pool(dsn)
        _PG_SCHEMAS.remove(dsn)
        with psycopg.connect(database, autocommit=True) as admin:
            _drop_schema(admin, schema)


def _drop_schema(admin: Any, schema: str) -> None:
    """DROP SCHEMA *schema*; a connection a failed test left idle in a transaction (a batched
    read it never finished, kept alive by the traceback) would block it: end those and retry."""
    import psycopg

    admin.execute("SET lock_timeout = '15s'")
    try:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        return
    except psycopg.errors.LockNotAvailable:
        pass
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
        " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
    )
    admin.execute(f"DROP SCHEMA {schema} CASCADE")


#: Marks a test that uses the store fixtures as SQLite-only (say why next to it): the parameter
#: replaces the parametrised ``store_backend`` fixture.
sqlite_only = pytest.mark.parametrize("store_backend", ["sqlite"])


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> str:
    """The back-end of this run of the test: "sqlite" or "postgresql" (every store test runs on both)."""
    return str(request.param)


@pytest.fixture
def new_store_dsn(
    store_backend: str, tmp_path: Path, pg_database: str | None
) -> Iterator[Callable[[str], str]]:
    """Factory: ``new_store_dsn(name)`` is the DSN of an empty store *name* on this test's back-end.

    A SQLite file ``tmp_path/NAME.db`` or a PostgreSQL schema of its own; the same *name* gives
    the same store again (a test that reopens it, or runs a CLI on it). Dropped after the test.
    """
    made: dict[str, str] = {}
    schemas: list[Iterator[str]] = []

    def make(name: str = "store") -> str:
        if name not in made:
            if store_backend == "sqlite":
                made[name] = f"sqlite:///{tmp_path / name}.db"
            else:
                schema = pg_schema_dsn(pg_database)
                made[name] = next(schema)
                schemas.append(schema)
        return made[name]

    try:
        yield make
    finally:
        for schema in schemas:
            schema.close()  # runs pg_schema_dsn's clean-up (pools closed, schema dropped)


@pytest.fixture
def store_dsn(new_store_dsn: Callable[[str], str]) -> str:
    """A ``store.dsn`` naming a new, empty store: a SQLite file, or a PostgreSQL schema."""
    return new_store_dsn("store")


@pytest.fixture
def any_store(store_dsn: str) -> Iterator[SQLStore]:
    """A fresh store on each back-end (closed after the test)."""
    store = open_dsn(store_dsn)
    try:
        yield store
    finally:
        store.close()


def use_store(config: Path, dsn: str) -> Path:
    """Point the config file *config* (from DEFAULT_TOML / ``write_config``) at store *dsn*."""
    text = config.read_text(encoding="utf-8")
    line = 'dsn = "sqlite:///reputable.db"'
    if line not in text:
        raise AssertionError(f"{config} has no default store line {line!r} to replace")
    config.write_text(text.replace(line, f'dsn = "{dsn}"', 1), encoding="utf-8")
    return config
