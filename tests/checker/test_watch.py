"""``reputable watch``: changes alert a local webhook and SMTP receiver; state survives restarts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from typer.testing import CliRunner

from reputable.checker.model import Finding, Report, Severity, Status, ZoneResult
from reputable.checker.watch import ChangeKind, next_state, range_targets
from reputable.core.cause import Cause
from reputable.testing import free_port, start_smtp
from tests.checker.dnsfixture import DnsFixture, ZoneData
from tests.checker.test_cli import app

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


class Hook(BaseHTTPRequestHandler):
    """Records JSON POST bodies on the server object."""

    def do_POST(self) -> None:  # http.server's hook name
        """Store the body and answer 204."""
        size = int(self.headers["Content-Length"])
        self.server.bodies.append(json.loads(self.rfile.read(size)))  # type: ignore[attr-defined]  # set below
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # base signature
        """Stay quiet."""


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Serve a webhook receiver on 127.0.0.1 and yield its URL and received bodies."""
    server = HTTPServer(("127.0.0.1", 0), Hook)
    server.bodies = []  # type: ignore[attr-defined]  # test-only attribute
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", server.bodies  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


class Inbox:
    """aiosmtpd handler keeping the received messages."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(  # noqa: N802  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Keep the message."""
        self.messages.append(
            envelope.content.decode()
            if isinstance(envelope.content, bytes)
            else str(envelope.content)
        )
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[str, Inbox]]:
    """Run an SMTP receiver on 127.0.0.1."""
    handler = Inbox()
    controller, port = start_smtp(handler)
    yield f"127.0.0.1:{port}", handler
    controller.stop()


@pytest.fixture
def lists() -> Iterator[DnsFixture]:
    """A DNS fixture whose listings the test changes between rounds."""
    data = ZoneData(records={("2.0.0.127.listed.test", "A"): ["127.0.0.2"]}, zones=("listed.test",))
    server = DnsFixture(data).start()
    yield server
    server.stop()


def watch_file(tmp_path: Path, webhook: str, smtp: str) -> Path:
    """Write a watch.toml for one IP and a /30 range."""
    path = tmp_path / "watch.toml"
    path.write_text(
        'ips = ["198.51.100.25"]\nranges = ["203.0.113.0/30"]\ninterval = "10m"\n'
        f'[webhook]\nurl = "{webhook}"\n'
        f'[email]\nserver = "{smtp}"\nfrom = "watch@example.net"\nto = ["abuse@example.net"]\n'
    )
    return path


def round_(lists: DnsFixture, path: Path) -> int:
    """Run one watch round against the fixture."""
    zones = Path(__file__).parent / "data" / "zones.toml"
    result = CliRunner().invoke(
        app(),
        [
            "watch",
            str(path),
            "--once",
            "--nameserver",
            lists.nameserver,
            "--no-builtin",
            "--zone-file",
            str(zones),
            "--zone",
            "listed.test",
        ],
    )
    return result.exit_code


def test_watch_alerts_on_listing_and_delisting_once(
    tmp_path: Path,
    lists: DnsFixture,
    webhook: tuple[str, list[dict[str, Any]]],
    inbox: tuple[str, Inbox],
) -> None:
    """Listing and delisting each alert once by webhook and e-mail; unchanged rounds stay quiet."""
    url, bodies = webhook
    smtp, handler = inbox
    path = watch_file(tmp_path, url, smtp)
    records: dict[tuple[str, str], list[str]] = lists.data.records  # type: ignore[assignment]
    records[("25.100.51.198.listed.test", "A")] = ["127.0.0.2"]
    assert round_(lists, path) == 0
    assert [c["change"] for c in bodies[0]["changes"]] == ["listed"]
    assert bodies[0]["changes"][0]["subject"] == "198.51.100.25"
    assert "198.51.100.25: listed: listed.test" in handler.messages[0]
    assert round_(lists, path) == 0  # a restart with the same state: no new alert
    assert len(bodies) == 1
    del records[("25.100.51.198.listed.test", "A")]
    assert round_(lists, path) == 0
    assert [(c["subject"], c["change"]) for c in bodies[1]["changes"]] == [
        ("198.51.100.25", "delisted")
    ]
    assert len(handler.messages) == 2
    state = json.loads((tmp_path / "watch-state.json").read_text())
    assert set(state["subjects"]) == {"198.51.100.25", *(f"203.0.113.{i}" for i in range(4))}


def test_failed_alert_is_retried_next_round(
    tmp_path: Path, lists: DnsFixture, inbox: tuple[str, Inbox]
) -> None:
    """When the webhook is down the state is not saved, so the change is alerted again later."""
    smtp, handler = inbox
    path = watch_file(tmp_path, f"http://127.0.0.1:{free_port()}/down", smtp)
    records: dict[tuple[str, str], list[str]] = lists.data.records  # type: ignore[assignment]
    records[("25.100.51.198.listed.test", "A")] = ["127.0.0.2"]
    assert round_(lists, path) == 2
    assert not (tmp_path / "watch-state.json").exists()
    assert len(handler.messages) == 1  # the working channel still delivered


def test_unanswered_zone_is_not_a_delisting() -> None:
    """A timeout after a listing keeps the listing instead of reporting it delisted."""
    listed = Report(
        subject="x", listings=(ZoneResult(zone="z", allow=False, status=Status.LISTED),)
    )
    silent = Report(
        subject="x", listings=(ZoneResult(zone="z", allow=False, status=Status.TIMEOUT),)
    )
    state, first = next_state({}, [listed], NOW)
    _, second = next_state(state, [silent], NOW)
    assert [c.kind for c in first] == [ChangeKind.LISTED] and second == []


def test_new_problem_and_its_resolution_are_changes() -> None:
    """A diagnostic turning bad alerts as problem, turning good again as resolved."""
    bad = Finding(check="rdns", cause=Cause.RDNS, severity=Severity.ERROR, message="no PTR")
    state, first = next_state({}, [Report(subject="x", findings=(bad,))], NOW)
    _, second = next_state(state, [Report(subject="x")], NOW)
    assert [c.kind for c in first] == [ChangeKind.PROBLEM]
    assert [c.kind for c in second] == [ChangeKind.RESOLVED]


def test_ranges_are_expanded_or_sampled() -> None:
    """Small ranges are checked whole, large ones by evenly spaced samples."""
    assert len(range_targets(ip_network("192.0.2.0/30"), 256, 16)) == 4
    sample = range_targets(ip_network("10.0.0.0/16"), 256, 16)
    assert len(sample) == 16 and sample[1] == "10.0.16.0"


def run_watch(path: Path, *extra: str) -> tuple[int, str]:
    """Run one round of ``watch`` on *path* (no DNS fixture: errors come first)."""
    result = CliRunner(env={"COLUMNS": "300"}).invoke(
        app(), ["watch", str(path), "--once", "--nameserver", "127.0.0.1:9", *extra]
    )
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('ips = ["198.51.100.25"]\nmax_range = "big"\n', "max_range must be a whole number"),
        ('ips = ["198.51.100.25"]\nsample = 0\n', "sample must be a whole number"),
        ('ips = ["198.51.100.25"]\nstate = "missing/dir/state.json"\n', "does not exist"),
        ('ips = ["198.51.100.25"]\n[webhook]\nurl = "file:///etc/passwd"\n', "http:// or https://"),
        ('ips = ["198.51.100.25"]\n[webhook]\nurl = "ftp://127.0.0.1/x"\n', "http:// or https://"),
        ('ips = ["999.1.1.1"]\n', "ips: "),
        ('domains = ["localhost"]\n', "not a fully qualified"),
        ('ips = ["198.51.100.25"]\n[email]\nserver = "127.0.0.1:x"\nfrom = "a@b.c"\n'
         'to = ["d@e.f"]\n', "HOST:PORT"),
    ],
)  # fmt: skip
def test_bad_watch_values_are_load_time_errors(tmp_path: Path, text: str, needle: str) -> None:
    """Each bad value is exit 2 with a message naming the watch file, before any round."""
    path = tmp_path / "watch.toml"
    path.write_text(text)
    code, out = run_watch(path)
    assert code == 2, out
    assert str(path) in out.replace("\n", "") and needle in out and "Traceback" not in out
    assert not (tmp_path / "watch-state.json").exists()


def test_checker_error_in_watch_file_names_the_watch_file(tmp_path: Path) -> None:
    """A bad [checker] value of a watch file names that file, not "defaults"."""
    path = tmp_path / "watch.toml"
    path.write_text('ips = ["198.51.100.25"]\n[checker]\ntimeout = -1\n')
    code, out = run_watch(path)
    assert code == 2
    assert f"{path} [checker]" in out.replace("\n", "") and "defaults" not in out


def test_inconclusive_check_keeps_the_old_problem_without_alerting() -> None:
    """A DNS timeout of a check is neither a new problem nor the resolution of an old one."""
    broken = Finding(check="spf", cause="mail_auth", severity=Severity.ERROR, message="broken")
    unknown = Finding(check="spf", cause="mail_auth", severity=Severity.WARNING,
                      message="could not check SPF", inconclusive=True)  # fmt: skip
    state, first = next_state({}, [Report(subject="x", findings=(broken,))], NOW)
    state, second = next_state(state, [Report(subject="x", findings=(unknown,))], NOW)
    assert [c.kind for c in first] == [ChangeKind.PROBLEM] and second == []
    assert state["subjects"]["x"]["problems"] == ["spf: broken"]
    assert state["subjects"]["x"]["inconclusive"] == ["spf: could not check SPF"]
    _, fresh = next_state({}, [Report(subject="y", findings=(unknown,))], NOW)
    assert fresh == []
