"""The fast paths of `ingest maillog`: the one-pass Postfix scan, the chunk reader, the sweeps.

Each fast path is checked against the plain way of doing the same thing: scanning lines one
by one, reading the whole file at once, and a detector fed the same events in one go.
"""

from __future__ import annotations

import gzip
import io
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.evidence.detectors import mail
from reputable.evidence.detectors.mail import MailDetector
from reputable.evidence.detectors.mail_config import MailParams
from reputable.evidence.parsers import postfix
from reputable.evidence.parsers.mailevent import ALL_EVENTS, Event, MailEvent
from reputable.evidence.parsers.syslog_time import TimeParser
from reputable.evidence.sources.maillog import DETECT_EVENTS, read_chunks
from tests.evidence.maillog_gen import generate

NOW = datetime(2026, 1, 3, 12, tzinfo=UTC)
SAMPLES = Path(__file__).parent.parent / "samples"
LINES = [
    line
    for line in (SAMPLES / "postfix.log").read_text(encoding="utf-8").splitlines()
    if not line.startswith("#")
]


def _scan(text: str, wanted: frozenset[Event] = ALL_EVENTS) -> list[MailEvent]:
    return list(postfix.scan(text, first_line=1, times=TimeParser(NOW), wanted=wanted))


@settings(max_examples=60, deadline=None)
@given(
    picks=st.lists(st.sampled_from(LINES), min_size=1, max_size=30),
    wanted=st.sampled_from([ALL_EVENTS, DETECT_EVENTS, frozenset({Event.CONNECT})]),
)
def test_one_pass_over_a_buffer_equals_scanning_each_line_alone(
    picks: list[str], wanted: frozenset[Event]
) -> None:
    """Hits of every kind come out in line order, numbered, as if each line were scanned alone."""
    together = _scan("".join(line + "\n" for line in picks), wanted)
    alone = [
        ev._replace(line=n) for n, line in enumerate(picks, 1) for ev in _scan(line + "\n", wanted)
    ]
    assert together == alone


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        # smtpd_client_port_logging = yes puts the port after the client's address
        (
            "Jan  1 00:03:00 mx postfix/smtpd[1]: warning: unknown[203.0.113.9]:52344: SASL LOGIN"
            " authentication failed: UGFzc3dvcmQ6",
            (Event.AUTH_FAILURE, "203.0.113.9"),
        ),
        # a program tag without a process ID
        (
            "Jan  1 00:03:00 mx postfix/smtpd: connect from unknown[203.0.113.9]",
            (Event.CONNECT, "203.0.113.9"),
        ),
        # orig_client= is the same message, not a second one
        (
            "Jan  1 00:03:00 mx postfix/smtpd[1]: 12AB: client=unknown[203.0.113.9],"
            " orig_client=relay.example[192.0.2.9]",
            (Event.QUEUED, "203.0.113.9"),
        ),
    ],
)
def test_message_shapes_give_exactly_one_event(line: str, expect: tuple[Event, str]) -> None:
    """Variants of the sample lines seen on real servers give one event each."""
    assert [(ev.event, ev.ip) for ev in _scan(line + "\n")] == [expect]


def test_literals_inside_other_text_are_not_events() -> None:
    """A literal counts only where a Postfix message (or a queue ID's) starts, not mid-text."""
    text = (
        "Jan  1 00:03:00 mx postfix/cleanup[1]: 12AB: message-id=<client=x[192.0.2.1]@example>\n"
        "Jan  1 00:03:00 mx postfix/smtpd[1]: reconnect from unknown[192.0.2.2]\n"
    )
    assert _scan(text) == []


def test_nothing_wanted_yields_nothing() -> None:
    """An empty wanted set is allowed and finds no event."""
    assert _scan("\n".join(LINES) + "\n", frozenset()) == []


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("chunk_bytes", [1, 3, 17, 1 << 20])
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"no newline at the end",
        b"\n\n\n",
        b"x" * 100 + b"\nshort\n" + b"y" * 5,
        "é ü ß\n".encode() * 20 + "ending in ü".encode(),
        b"bad \xff byte\n",
    ],
)
def test_chunks_end_at_line_ends_and_join_to_the_file(
    tmp_path: Path, data: bytes, chunk_bytes: int, suffix: str
) -> None:
    """Lines longer than the buffer, multi-byte characters across reads and .gz all come out whole."""
    path = tmp_path / f"mail.log{suffix}"
    path.write_bytes(gzip.compress(data) if suffix else data)
    text = data.decode("utf-8", "replace")
    whole = text if not text or text.endswith("\n") else text + "\n"
    chunks = list(read_chunks(path, chunk_bytes))
    assert "".join(chunks) == whole
    assert all(chunk.endswith("\n") for chunk in chunks)


class _FullSweep(MailDetector):
    """The reference: every sweep looks at every open harvest window, as the detector once did."""

    def _close_until(self, until: float | None) -> None:
        window = self.params.harvest.window.total_seconds()
        for ip, ep in list(self._episodes.items()):
            if until is None or ep.start + window <= until:
                self._close(ip, ep)
                del self._episodes[ip]


@pytest.mark.parametrize("swap", [False, True])
def test_sweeps_close_the_same_windows_as_a_full_look(
    swap: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Popping ended windows in order gives the evidence of looking at all, even when time goes back."""
    monkeypatch.setattr(mail, "_SWEEP_EVERY", 200)  # many sweeps in a short log
    buf = io.StringIO()
    generate(buf, 30_000, seed=5)
    lines = buf.getvalue().splitlines(keepends=True)
    if swap:  # the later half first (rotated files read in the wrong order, a clock step)
        lines = lines[len(lines) // 2 :] + lines[: len(lines) // 2]
    events = _scan("".join(lines), DETECT_EVENTS)

    def run(detector: MailDetector) -> dict[str, tuple[object, ...]]:
        found = detector.feed(events) + detector.flush(detector.now) + detector.flush()
        return {e.key: (e.observed_at, e.weight, e.detail) for e in found}

    fast, full = (
        run(MailDetector(MailParams(), "maillog")),
        run(_FullSweep(MailParams(), "maillog")),
    )
    assert fast == full
    assert any(key.startswith("maillog:harvest:") for key in fast)


def test_a_window_reopened_by_its_ip_is_not_closed_by_the_old_ones_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A harvester's next window, opened by its own next line, runs its full hour despite sweeps."""
    monkeypatch.setattr(mail, "_SWEEP_EVERY", 1)  # a sweep after every event
    start = datetime(2026, 1, 2, 8, tzinfo=UTC).timestamp()
    lines = []
    for i in range(400):  # one unknown recipient every 30 s for 3 h 20 min
        at = datetime.fromtimestamp(start + 30 * i, UTC)
        lines.append(
            f"{at:%b} {at.day:2d} {at:%H:%M:%S} mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from"
            f" unknown[192.0.2.7]: 550 5.1.1 <u{i}@example.org>: Recipient address rejected:"
            f" User unknown; from=<a@b.example> to=<u{i}@example.org> proto=ESMTP helo=<h>\n"
        )
    events = _scan("".join(lines), DETECT_EVENTS)

    def run(detector: MailDetector) -> list[str]:
        return sorted(e.key for e in detector.feed(events) + detector.flush())

    fast, full = run(MailDetector(MailParams(), "m")), run(_FullSweep(MailParams(), "m"))
    assert fast == full and len(fast) == 4  # four hour-long windows, each its own evidence


JUNK = [
    "Jan  1 00:00:09 mx dovecot: imap-login: Login: user=<a@example.org>, rip=192.0.2.9",
    "",
    "Jan  1 00:00:09 mx postfix/smtpd[1]: connect from unknown[unknown]",
    "Foo 99 00:00:09 mx postfix/smtpd[1]: connect from unknown[192.0.2.9]",
]


@settings(max_examples=80, deadline=None)
@given(picks=st.lists(st.sampled_from(LINES + JUNK), min_size=1, max_size=40))
def test_understood_is_the_lines_with_an_event_of_any_kind(picks: list[str]) -> None:
    """A dry run's understood count (every event parsed) equals what --dry-run --jsonl prints.

    A real ingest parses only the detectors' events and counts the others by their text, so
    it also counts the junk lines that carry such a text (the last two of JUNK).
    """
    from reputable.evidence.detectors.mail_config import MailParams
    from reputable.evidence.parsers.mailevent import ALL_EVENTS
    from reputable.evidence.sources.maillog import MailRun

    buf = "".join(line + "\n" for line in picks)
    printed = _scan(buf)  # what --dry-run --jsonl prints: every event
    dry = MailRun(MailParams(), TimeParser(NOW))
    dry.wanted = ALL_EVENTS  # as `ingest maillog --dry-run` does
    dry.detect(buf, "mail.log", 1, "postfix")
    t = dry.tally
    assert t.understood == len(printed) == len({ev.line for ev in printed})
    assert t.understood + t.no_event + t.not_understood == t.read == len(picks)
    assert t.not_understood == sum(
        1 for line in picks if line.strip() and postfix.MARKER not in line
    )
    real = MailRun(MailParams(), TimeParser(NOW))
    real.detect(buf, "mail.log", 1, "postfix")
    assert real.tally.understood == len(printed) + sum(line in JUNK[2:] for line in picks)
    assert real.tally.events - t.events == Counter(
        {Event.CONNECT: sum(line in JUNK[2:] for line in picks)}
    ) or not any(line in JUNK[2:] for line in picks)


def test_milter_reject_queue_id_is_the_queue_id() -> None:
    """``QUEUEID: milter-reject: ...`` gives the queue ID, not "milter-"."""
    line = (
        "Jan  5 10:00:02 mx postfix/cleanup[22]: 4BxYz2: milter-reject: END-OF-MESSAGE from"
        " unknown[203.0.113.91]: 5.7.1 Spam message rejected; from=<a@spam.example>"
        " to=<b@example.org> proto=ESMTP helo=<spamhelo>\n"
    )
    (ev,) = _scan(line)
    assert (ev.event, ev.queue_id, ev.ip, ev.helo) == (
        Event.REJECTED, "4BxYz2", "203.0.113.91", "spamhelo",
    )  # fmt: skip
