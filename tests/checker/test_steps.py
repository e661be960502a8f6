"""Next steps per list: fix first, then the removal path of each list, then when to re-check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reputable.checker.model import (
    Delisting,
    Finding,
    Removal,
    Report,
    Severity,
    Status,
    ZoneResult,
)
from reputable.checker.render import removal_text
from reputable.checker.steps import StepKind, duration_text, next_steps
from reputable.checker.watch import ChangeKind, next_state
from reputable.core.cause import Cause


def listing(zone: str, delisting: Delisting, cause: Cause = Cause.SPAM, **kw: str) -> ZoneResult:
    """Return a listing of the test subject on *zone*."""
    return ZoneResult(
        zone=zone,
        allow=False,
        status=Status.LISTED,
        codes=("127.0.0.2",),
        meaning=f"{zone} meaning",
        causes=(cause,),
        removal_url=f"https://{zone}/remove",
        operator=f"{zone} operator",
        delisting=delisting,
        **kw,
    )


SELF = Delisting(method=Removal.SELF_SERVICE)
L1 = Delisting(method=Removal.EXPIRY, expires=timedelta(days=7), paid_express=True)
L2 = Delisting(method=Removal.NETWORK, paid_express=True)
RELAY = Finding(
    check="relay",
    cause=Cause.OPEN_RELAY,
    severity=Severity.ERROR,
    message="192.0.2.7 accepts mail for anyone: open relay",
    remediation="Close the relay.",
)


def report() -> Report:
    """A subject on a self-service list, an expiring list with paid express, a network list."""
    return Report(
        subject="192.0.2.7",
        listings=(
            listing("l2.example", L2, Cause.NETWORK),
            listing("l1.example", L1),
            listing("self.example", SELF, Cause.COMPROMISED),
            ZoneResult(zone="clean.example", allow=False, status=Status.CLEAN),
        ),
        findings=(RELAY,),
    )


def test_steps_are_fix_then_removal_then_recheck() -> None:
    """The finding's fix and the causes' fixes come first, removal paths next, re-check last."""
    steps = next_steps(report())
    kinds = [s.kind for s in steps]
    assert kinds == [
        StepKind.FIX, StepKind.FIX, StepKind.FIX,
        StepKind.REMOVE, StepKind.WAIT, StepKind.PROVIDER,
        StepKind.RECHECK,
    ]  # fmt: skip
    assert steps[0].text.endswith("Close the relay.")
    assert "Listed for spam by l1.example" in steps[1].text
    assert "Listed for compromised by self.example" in steps[2].text
    assert steps[3].url == "https://self.example/remove" and "(free)" in steps[3].text
    assert "after 7 days" in steps[4].text and "No request needed" in steps[4].text
    assert "cannot remove it" in steps[5].text and "abuse desk" in steps[5].text
    assert "within 7 days" in steps[6].text and "reputable watch" in steps[6].text


def test_paid_express_is_mentioned_never_recommended() -> None:
    """Lists selling express removal are named as such, with why it is not needed."""
    texts = [s.text for s in next_steps(report())]
    express = [t for t in texts if "express removal for a fee" in t]
    assert len(express) == 2
    assert all("it is not needed" in t for t in express)
    assert not any("recommend" in t.lower() or "pay to" in t.lower() for t in texts)


def test_mx_host_listings_are_named_with_their_host() -> None:
    """A domain check's steps say which MX host a listing is about."""
    mx = Report(
        subject="example.net", listings=(listing("self.example", SELF, subject="192.0.2.9"),)
    )
    steps = next_steps(mx)
    assert "self.example (MX host 192.0.2.9)" in steps[-2].text


def test_clean_report_without_problems_has_no_steps() -> None:
    """Nothing listed and nothing wrong: no steps at all."""
    clean = Report(
        subject="192.0.2.8",
        listings=(ZoneResult(zone="clean.example", allow=False, status=Status.CLEAN),),
    )
    assert next_steps(clean) == ()


def test_removal_text_per_method() -> None:
    """Each removal method reads as what the admin can expect."""
    assert removal_text(listing("a", SELF)).startswith("request removal after fixing (free): https")
    assert "expires by itself after 7 days" in removal_text(listing("a", L1))
    assert "paid express removal offered (not needed)" in removal_text(listing("a", L1))
    assert removal_text(listing("a", L2)).startswith("network listing: only the provider")
    assert duration_text(timedelta(hours=24)) == "1 day" and duration_text(timedelta(hours=5)) == (
        "5 hours"
    )


def test_watch_says_when_each_listing_is_gone() -> None:
    """A listing seen in one round and gone in a later one is reported gone, with how long it lasted."""
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    listed = Report(subject="192.0.2.7", listings=(listing("l1.example", L1),))
    gone = Report(
        subject="192.0.2.7",
        listings=(ZoneResult(zone="l1.example", allow=False, status=Status.CLEAN),),
    )
    state, first = next_state({"subjects": {}}, [listed], start)
    assert [c.kind for c in first] == [ChangeKind.LISTED]
    assert "removal: expires by itself after 7 days" in first[0].detail
    _, second = next_state(state, [gone], start + timedelta(days=3))
    assert [c.kind for c in second] == [ChangeKind.DELISTED]
    assert second[0].detail == (
        "l1.example: gone at 2026-12-04T08:00:00Z (listed since 2026-12-01T08:00:00Z, 3 days)"
    )
