"""Public test helpers: a loopback `reputable serve` process and free ports (no outside traffic)."""

from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from reputable.config import DEFAULT_TOML
from reputable.core.address import Domain, Subject, format_subject
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Batch, Listing

#: Where :func:`free_port` records the ports it handed out (one empty file a port).
PORT_RESERVATIONS = Path(tempfile.gettempdir()) / "reputable-test-ports"
#: Seconds a handed-out port stays reserved: ample for a test to start the server that binds it.
PORT_HOLD_SECONDS = 300.0


def _ephemeral_range() -> tuple[int, int]:
    """Return the kernel's ephemeral port range (Linux), else the IANA default."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535


def _candidates() -> Iterator[int]:
    """Yield ports to try: random ones outside the ephemeral range first, then kernel picks.

    The kernel hands ports of its ephemeral range to every socket bound to port 0 and to every
    outgoing connection, so a port picked there and closed can be taken again before a server
    binds it (EADDRINUSE under the suite's load, whatever the reservation says). Ports below
    that range are never handed out by the kernel: between our check and the server's bind,
    only another caller of this function could take one, and the reservation rules that out.
    """
    import random

    low, high = _ephemeral_range()
    # Below the range when there is room, else above it (empty when the range ends at 65535).
    pool = range(max(20000, low - 12000), low) if low > 20000 else range(high + 1, 65536)
    for _ in range(400 if pool else 0):
        yield random.choice(pool)
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            yield int(probe.getsockname()[1])


def _bindable(port: int) -> bool:
    """True when both TCP and UDP can bind *port* on 127.0.0.1 right now."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        try:
            tcp.bind(("127.0.0.1", port))
            udp.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """Return a port that is free for both UDP and TCP on 127.0.0.1, and reserved for the caller.

    The port comes from below the kernel's ephemeral range (see :func:`_candidates`), so no
    socket bound to port 0 and no outgoing connection can take it before the caller's server
    binds it. Every port handed out is recorded in :data:`PORT_RESERVATIONS`, and a port that
    another caller (another pytest-xdist worker, another suite) took less than
    :data:`PORT_HOLD_SECONDS` ago is never handed out again.
    """
    for port in _candidates():
        if _bindable(port) and _reserve(port):
            return port
    raise RuntimeError(
        f"no free UDP+TCP port on 127.0.0.1 that {PORT_RESERVATIONS} does not hold already;"
        " remove that folder if no tests are running"
    )


def start_smtp(handler: object, **options: Any) -> tuple[Any, int]:
    """Start an aiosmtpd Controller for *handler* on 127.0.0.1; return it and its port.

    The Controller cannot bind port 0 (it connects to its own port to start), so it takes a
    reserved port (`free_port`); should another program have bound that port meanwhile, it
    takes another.
    """
    from aiosmtpd.controller import Controller

    for attempt in range(5):
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
        try:
            controller.start()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or attempt == 4:
                raise
            continue
        return controller, port
    raise AssertionError("unreachable")


def _reserve(port: int) -> bool:
    """Record *port* as taken; False when another caller reserved it within the hold time."""
    PORT_RESERVATIONS.mkdir(mode=0o1777, exist_ok=True)
    path = PORT_RESERVATIONS / str(port)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        return True
    except FileExistsError:
        pass
    try:
        if time.time() - path.stat().st_mtime < PORT_HOLD_SECONDS:
            return False
        # A stale reservation: whoever renames it away first may take the port.
        os.rename(path, path.with_name(f"{port}.{os.getpid()}.stale"))
    except FileNotFoundError:
        return False
    path.with_name(f"{port}.{os.getpid()}.stale").unlink(missing_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except FileExistsError:
        return False
    return True


def write_config(
    directory: Path, *, dns_port: int, extra: str = "", http_port: int = 0, **dns: str
) -> Path:
    """Write a reputable.toml in *directory* serving DNS on 127.0.0.1:*dns_port*.

    HTTP listens on 127.0.0.1:*http_port* (0: any free port, never the default 8080).
    """
    text = DEFAULT_TOML.replace('listen = ["127.0.0.1:5300"]', f'listen = ["127.0.0.1:{dns_port}"]')
    text = text.replace('listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{http_port}"')
    for key, value in dns.items():
        pattern = re.compile(rf"^{re.escape(key)} = .*$", re.MULTILINE)
        if pattern.search(text):
            text = pattern.sub(f"{key} = {value}".replace("\\", "\\\\"), text, count=1)
        else:
            text = text.replace("[dns]\n", f"[dns]\n{key} = {value}\n", 1)
    path = directory / "reputable.toml"
    path.write_text(text + "\n" + extra, encoding="utf-8")
    return path


def cli(
    config: Path, *args: str, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``reputable --config CONFIG ARGS...`` in a subprocess and return its result."""
    result = subprocess.run(
        [sys.executable, "-m", "reputable", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        command = " ".join(args)
        raise AssertionError(
            f"reputable {command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def wait_for(
    predicate: Callable[[], object],
    seconds: float,
    what: str = "condition",
    detail: Callable[[], str] | None = None,
) -> float:
    """Poll *predicate* every 50 ms until it is true; return the seconds that took.

    The predicate is always asked at least once, and once more when *seconds* have passed (a
    deadline spent elsewhere, by a loaded machine or a slow first ask, never fails a condition
    that already holds). AssertionError naming *what* when it is still false then, followed
    by what *detail* returns (a server's log, say: what the CI run shows of the failure).
    """
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start >= seconds:
            raise AssertionError(_not_met(what, seconds, detail))
        time.sleep(0.05)


async def wait_for_async(
    predicate: Callable[[], object],
    seconds: float,
    what: str = "condition",
    detail: Callable[[], str] | None = None,
) -> float:
    """:func:`wait_for` inside an event loop: poll *predicate* every 20 ms without blocking it.

    For tests whose condition is met by another task of the same loop: a fixed
    ``asyncio.sleep`` followed by an assertion fails when the machine stalls the loop.
    """
    import asyncio

    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start >= seconds:
            raise AssertionError(_not_met(what, seconds, detail))
        await asyncio.sleep(0.02)


def _not_met(what: str, seconds: float, detail: Callable[[], str] | None) -> str:
    return f"{what} not met within {seconds} s" + (f":\n{detail()}" if detail else "")


class RunningServer:
    """`reputable serve` on loopback for the duration of a ``with`` block."""

    def __init__(
        self, config: Path, *, metrics_port: int | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.config = config
        self.metrics_port = metrics_port or free_port()
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = config.parent / "serve.log"

    def __enter__(self) -> RunningServer:
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reputable",
                "--config",
                str(self.config),
                "serve",
                "--metrics",
                f"127.0.0.1:{self.metrics_port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(self.env or {})},
        )
        # Returns as soon as serve says it is ready; the margin is for a loaded machine (a
        # cold start took 12 s at load 20 with four test workers).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if "serve_ready" in self.log_path.read_text():
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError(f"reputable serve did not start:\n{self.log_path.read_text()}")

    def log(self) -> str:
        """Return what the server has logged so far."""
        return self.log_path.read_text()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)  # seconds at most when quiet; more at load 20
            except subprocess.TimeoutExpired:
                self.proc.kill()
                # reaped here: a killed child left unwaited is a ResourceWarning (an error
                # under filterwarnings) charged to whichever test the garbage collector meets
                self.proc.wait()
        self._log.close()


def _family(subject: Subject) -> int:
    return 0 if isinstance(subject, Domain) else subject.version


class MemoryStore:
    """An in-memory ListingStore and ListingSource for tests (no SQL, same semantics)."""

    def __init__(self) -> None:
        self._listings: dict[tuple[str, str, str], Listing] = {}
        self._allows: dict[tuple[str, str], AllowEntry] = {}
        self._serial = 1

    def apply(self, batch: Batch, *, actor: str, action: str) -> None:
        """Insert or replace every listing and allow entry of *batch*."""
        for listing in batch.listings:
            key = (listing.subject_text, listing.cause.value, listing.source)
            self._listings[key] = listing
        for entry in batch.allows:
            self._allows[(entry.subject_text, entry.source)] = entry
        self._serial += 1

    def remove_listings(
        self, subject: Subject, *, cause: Cause | None, source: str | None, actor: str
    ) -> int:
        """Delete listings of exactly *subject*; return how many."""
        text = format_subject(subject)
        doomed = [
            k
            for k in self._listings
            if k[0] == text
            and (cause is None or k[1] == cause.value)
            and (source is None or k[2] == source)
        ]
        for key in doomed:
            del self._listings[key]
        if doomed:
            self._serial += 1
        return len(doomed)

    def remove_allow(self, subject: Subject, *, actor: str) -> int:
        """Delete allowlist entries of exactly *subject*; return how many."""
        doomed = [k for k in self._allows if k[0] == format_subject(subject)]
        for key in doomed:
            del self._allows[key]
        if doomed:
            self._serial += 1
        return len(doomed)

    def listings(
        self, *, cause: Cause | None = None, active_at: datetime | None = None
    ) -> Iterator[Listing]:
        """Yield listings, optionally of one cause and active at *active_at*."""
        for listing in list(self._listings.values()):
            if cause is not None and listing.cause is not cause:
                continue
            if active_at is not None and not listing.active(active_at):
                continue
            yield listing

    def allows(self, *, active_at: datetime | None = None) -> Iterator[AllowEntry]:
        """Yield allowlist entries, optionally only those active at *active_at*."""
        for entry in list(self._allows.values()):
            if active_at is None or entry.active(active_at):
                yield entry

    def listing_rows(
        self, *, active_at: datetime
    ) -> Iterator[tuple[str, int, str, str, float, float | None]]:
        """Yield active listings as publication rows."""
        for item in self.listings(active_at=active_at):
            yield (
                item.subject_text,
                _family(item.subject),
                item.cause.value,
                item.reason,
                item.listed_at.timestamp(),
                None if item.expires_at is None else item.expires_at.timestamp(),
            )

    def allow_rows(self, *, active_at: datetime) -> Iterator[tuple[str, int, str, float | None]]:
        """Yield active allowlist entries as publication rows."""
        for entry in self.allows(active_at=active_at):
            yield (
                entry.subject_text,
                _family(entry.subject),
                entry.note,
                None if entry.expires_at is None else entry.expires_at.timestamp(),
            )

    def serial(self) -> int:
        """Return the change counter."""
        return self._serial

    def close(self) -> None:
        """Nothing to release."""
