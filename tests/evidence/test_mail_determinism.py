"""The same mail log gives byte-identical evidence, whatever the sweeps and restarts in between."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reputable.evidence.detectors import mail as mail_module
from reputable.evidence.detectors.mail import MailDetector
from reputable.evidence.detectors.mail_config import MailParams
from reputable.evidence.model import Evidence
from reputable.evidence.parsers.mailevent import Event, MailEvent

IPS = [f"192.0.2.{i}" for i in range(1, 5)]
HELOS = ["", "mx.example", "bulk.example"]
SENDERS = ["", "a@one.example", "b@two.example"]


@st.composite
def mail_events(draw: st.DrawFn) -> list[MailEvent]:
    """A time-ordered stream of recipient events from a few IPs over a few hours."""
    count = draw(st.integers(min_value=20, max_value=400))
    t = 1_767_225_600.0
    events = []
    for line in range(1, count + 1):
        t += draw(st.sampled_from([0.0, 1.0, 7.0, 60.0, 400.0, 1900.0]))
        ip = draw(st.sampled_from(IPS))
        kind = draw(
            st.sampled_from([Event.UNKNOWN_RECIPIENT] * 3 + [Event.QUEUED, Event.DISCONNECT])
        )
        detail = (
            f"ehlo=1 rcpt={draw(st.integers(0, 3))}/{draw(st.integers(3, 9))}"
            if kind is Event.DISCONNECT
            else ""
        )
        text = f"line {line} {kind.value} {ip}"
        events.append(
            MailEvent(
                line, t, kind, ip, text, helo=draw(st.sampled_from(HELOS)),
                sender=draw(st.sampled_from(SENDERS)), recipient=f"u{line}@dest.example",
                queue_id=f"Q{line}", detail=detail,
            )
        )  # fmt: skip
    return events


def _canonical(evidence: list[Evidence]) -> list[str]:
    return sorted(
        json.dumps(
            [e.key, str(e.subject), e.cause.value, e.observed_at.isoformat(), e.weight, e.detail],
            sort_keys=True,
        )
        for e in evidence
    )


def _run(events: list[MailEvent], cuts: list[int]) -> list[str]:
    """Feed *events* in pieces, each through a fresh detector restored from the last state."""
    out: list[Evidence] = []
    state: dict[str, object] | None = None
    bounds = [0, *sorted(set(cuts)), len(events)]
    for lo, hi in itertools.pairwise(bounds):
        detector = MailDetector(MailParams(), "maillog:/var/log/mail.log")
        if state is not None:
            detector.restore(json.loads(json.dumps(state)))
        out += detector.feed(events[lo:hi])
        state = detector.state()
    out += detector.flush()
    return _canonical(out)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(events=mail_events(), data=st.data())
def test_same_log_same_evidence_across_sweeps_and_restarts(
    events: list[MailEvent], data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sweeps at other moments and kills/restarts at random lines change no evidence byte."""
    monkeypatch.setattr(mail_module, "_SWEEP_EVERY", 1_000_000)
    reference = _run(events, [])
    cuts = data.draw(st.lists(st.integers(1, len(events) - 1), max_size=6))
    monkeypatch.setattr(mail_module, "_SWEEP_EVERY", data.draw(st.integers(1, 50)))
    assert _run(events, cuts) == reference
