"""Exim logging to syslog (``log_file_path = syslog``): the same events as from its own files.

Every annotated line of tests/samples/exim.log is wrapped in the envelopes Exim's lines get
on their way through syslog (log.c write_syslog): with Exim's own time (``syslog_timestamp``
true, the default), without it (the syslog time is the only one), as ``exim4`` without a
PID, in RFC 3339 and RFC 5424 envelopes and as the first part of a split line. Each must
give the event of the plain line, with the same fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reputable.core.clock import parse_instant
from reputable.evidence.parsers import exim
from reputable.evidence.parsers.mailevent import ALL_EVENTS, MailEvent
from reputable.evidence.parsers.maillog import Tally, recognised, sniff
from reputable.evidence.parsers.syslog_time import TimeParser
from reputable.testing import cli

SAMPLES = Path(__file__).parent.parent / "samples"


def _samples() -> tuple[datetime, list[tuple[object, str]]]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    pairs: list[tuple[object, str]] = []
    expect: object = "missing"
    for raw in (SAMPLES / "exim.log").read_text(encoding="utf-8").splitlines():
        if raw.startswith("# now:"):
            now = parse_instant(raw.removeprefix("# now:").strip())
        elif raw.startswith("# expect:"):
            expect = json.loads(raw.removeprefix("# expect:"))
        elif not raw.startswith("#"):
            pairs.append((expect, raw))
    return now, pairs


def _exim_time(line: str) -> datetime:
    """The instant of a line, in UTC (the zone of ``log_timezone`` when it shows one)."""
    zone = re.match(r"^\S+ \S+ ([+-]\d{4}) ", line)
    if zone is not None:
        return datetime.strptime(f"{line[:19]} {zone.group(1)}", "%Y-%m-%d %H:%M:%S %z").astimezone(
            UTC
        )
    return datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _traditional(line: str) -> str:
    at = _exim_time(line)
    return f"{at:%b} {at.day:2d} {at:%H:%M:%S}"


def _body(line: str) -> str:
    """The line without Exim's time, milliseconds and zone (``syslog_timestamp = false``)."""
    return re.sub(r"^\S+ \S+ (?:[+-]\d{4} )?", "", line)


ENVELOPES: dict[str, Callable[[str], str]] = {
    "with exim time": lambda line: f"{_traditional(line)} mx1 exim[4242]: {line}",
    "without exim time": lambda line: f"{_traditional(line)} mx1 exim[4242]: {_body(line)}",
    "exim4 without pid": lambda line: f"{_traditional(line)} mx1 exim4: {_body(line)}",
    "rfc3339": lambda line: (
        f"{_exim_time(line):%Y-%m-%dT%H:%M:%S}.123456+00:00 mx1 exim[7]: " + _body(line)
    ),
    "rfc5424": lambda line: f"<22>1 {_exim_time(line):%Y-%m-%dT%H:%M:%S}Z mx1 exim 7 - - {line}",
    "first part of a split line": lambda line: f"{_traditional(line)} mx1 exim[9]: [1\\2] {line}",
    "unpadded day": lambda line: (
        f"{_traditional(line).replace('  ', ' ')} mx1 exim[9]: " + _body(line)
    ),
    "no host": lambda line: f"{_traditional(line)} exim[9]: {_body(line)}",
}


def _events(buf: str, now: datetime) -> dict[int, list[MailEvent]]:
    out: dict[int, list[MailEvent]] = {}
    for ev in exim.scan(buf, first_line=1, times=TimeParser(now), wanted=ALL_EVENTS):
        out.setdefault(ev.line, []).append(ev)
    return out


_FIELDS = ("event", "ip", "host", "helo", "sender", "recipient", "user", "queue_id", "code")


@pytest.mark.parametrize("envelope", sorted(ENVELOPES))
def test_every_sample_line_gives_the_same_event_behind_a_syslog_envelope(envelope: str) -> None:
    """Each exim.log line in the envelope yields the plain line's event, fields and time."""
    now, pairs = _samples()
    dated = [line for _, line in pairs if exim.LINE.match(line)]
    assert len(dated) >= 40
    wrap = ENVELOPES[envelope]
    plain = _events("".join(line + "\n" for line in dated), now)
    # other daemons' lines between them, as in a shared mail.log: never an event
    noise = "Mar  2 07:47:48 mx1 dovecot: imap-login: Login: user=<a>, rip=192.0.2.1\n"
    wrapped = _events("".join(noise + wrap(line) + "\n" for line in dated), now)
    assert sorted(wrapped) == [2 * n for n in sorted(plain)], envelope
    for lineno, events in plain.items():
        got = wrapped[2 * lineno]
        want = [e.to_json() for e in events]
        assert [{k: e.to_json().get(k) for k in _FIELDS} for e in got] == [
            {k: w.get(k) for k in _FIELDS} for w in want
        ], dated[lineno - 1]
        for a, b in zip(got, events, strict=True):
            # the time of the plain line (whole seconds: syslog has no more in this sample)
            assert abs(a.at - b.at) < 1, (envelope, dated[lineno - 1])


def test_later_parts_of_a_split_line_give_no_event() -> None:
    """``[2\\3]`` continues a line cut at 870 bytes: no time, no client, no event."""
    now = datetime(2026, 3, 5, tzinfo=UTC)
    buf = (
        "Mar  2 07:47:48 mx1 exim[9]: [1\\2] 2026-03-02 07:47:48 H=(a.example) [192.0.2.1] "
        "F=<s@x.example> rejected RCPT <n@example.org>: Unknown user\n"
        "Mar  2 07:47:48 mx1 exim[9]: [2\\2] H=(b.example) [192.0.2.2] F=<s@x.example> "
        "rejected RCPT <n@example.org>: Unknown user\n"
    )
    found = _events(buf, now)
    assert list(found) == [1] and found[1][0].ip == "192.0.2.1"


def test_syslog_time_without_exim_time_follows_the_zone_and_year() -> None:
    """Without Exim's time the syslog time is read in the configured zone, its year inferred."""
    from zoneinfo import ZoneInfo

    now = datetime(2027, 1, 2, tzinfo=UTC)
    buf = "Dec 31 23:30:00 mx1 exim[1]: H=(x) [192.0.2.9] rejected RCPT <a@b.example>: relay not permitted\n"
    berlin = list(
        exim.scan(
            buf, first_line=1, times=TimeParser(now, ZoneInfo("Europe/Berlin")), wanted=ALL_EVENTS
        )
    )
    assert len(berlin) == 1 and berlin[0].event.value == "relay_denied"
    assert datetime.fromtimestamp(berlin[0].at, UTC) == datetime(2026, 12, 31, 22, 30, tzinfo=UTC)


def test_sniffing_and_line_accounting_know_exim_in_syslog() -> None:
    """A syslog file of Exim lines is sniffed as exim and its lines counted as recognised."""
    now, pairs = _samples()
    wrap = ENVELOPES["with exim time"]
    lines = [wrap(line) for _, line in pairs if exim.LINE.match(line)]
    text = "Mar  2 07:40:00 mx1 kernel: eth0 up\n" + "\n".join(lines) + "\n"
    assert sniff(text) == "exim"
    assert all(recognised(line, "exim") for line in lines)
    assert not recognised("Mar  2 07:40:00 mx1 kernel: eth0 up", "exim")
    tally = Tally()
    tally.count_lines(text, "exim", "mail.log", 1)
    assert tally.recognised == len(lines) and tally.not_understood == 1
    assert now > datetime(2026, 1, 1, tzinfo=UTC) - timedelta(days=1)


def test_ingest_maillog_reads_exim_in_syslog(tmp_path: Path) -> None:
    """`reputable ingest maillog` on an Exim syslog file stores what the plain file gives."""
    now, pairs = _samples()
    dated = [line for _, line in pairs if exim.LINE.match(line)]
    plain = tmp_path / "mainlog"
    plain.write_text("".join(line + "\n" for line in dated), encoding="utf-8")
    syslog = tmp_path / "mail.log"
    wrap = ENVELOPES["without exim time"]
    syslog.write_text("".join(wrap(line) + "\n" for line in dated), encoding="utf-8")
    iso = now.isoformat().replace("+00:00", "Z")
    outs = []
    config = tmp_path / "reputable.toml"
    config.write_text('data_dir = "."\n', encoding="utf-8")
    for path in (plain, syslog):
        result = cli(
            config, "ingest", "maillog", str(path), "--dry-run", "--jsonl",
            "--now", iso,
        )  # fmt: skip
        outs.append([json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")])
    assert outs[0] and len(outs[0]) == len(outs[1])
    assert [(o.get("event"), o.get("ip")) for o in outs[0]] == [
        (o.get("event"), o.get("ip")) for o in outs[1]
    ]
