"""ARF feedback reports (RFC 5965): fields, fallbacks, attribution, deduplication, malformed reports."""

from __future__ import annotations

import mailbox
from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path

import pytest

from reputable.core.address import Domain
from reputable.core.cause import Cause
from reputable.evidence.parsers import arf
from reputable.evidence.sources.arf import ArfRun, ingest_reports, messages

SAMPLES = Path(__file__).parent.parent / "samples" / "arf"
NOW = datetime(2026, 3, 5, tzinfo=UTC)


def test_rfc5965_simple_example_takes_the_address_from_received() -> None:
    """RFC 5965 B.1 has no Source-IP: the address comes from the original's Received header."""
    report = arf.parse((SAMPLES / "rfc5965-b1.eml").read_bytes())
    assert report.feedback_type == "abuse" and report.source_ip == ip_address("192.0.2.1")
    assert report.message_id == "8787KJKJ3K4J3K4J3K4J3.mail@example.net"
    assert report.arrival == datetime(2005, 3, 8, 21, 40, 36, tzinfo=UTC)  # the report's Date (EDT)


def test_rfc5965_optional_fields_are_read_but_do_not_attribute() -> None:
    """RFC 5965 B.2's Reported-Domain without a passing DKIM signature leaves the evidence on the IP."""
    report = arf.parse((SAMPLES / "rfc5965-b2.eml").read_bytes())
    assert report.arrival == datetime(2005, 3, 8, 18, 0, tzinfo=UTC)
    assert report.original_mail_from == "somespammer@example.net"
    assert report.reported_domain == "example.net" and report.dkim_domain is None


def test_dkim_signed_report_is_attributed_to_the_signing_domain() -> None:
    """A passing DKIM signature by the reported domain (or its parent) sets the related domain."""
    report = arf.parse((SAMPLES / "dkim-signed.eml").read_bytes())
    assert report.source_ip == ip_address("2001:db8:5::25") and report.weight == 1.5
    assert report.dkim_domain == Domain("news.shop.example")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("malformed-no-type.eml", "no Feedback-Type"),
        ("malformed-bad-ip.eml", "bad Source-IP '300.1.2.3'"),
        ("malformed-plain.eml", "not a report"),
    ],
)
def test_malformed_reports_say_what_is_wrong(name: str, why: str) -> None:
    """Each malformed sample raises ArfError naming the problem."""
    with pytest.raises(arf.ArfError, match=why):
        arf.parse((SAMPLES / name).read_bytes())


def test_folder_import_dedups_counts_malformed_and_skips_not_spam() -> None:
    """Importing the sample folder: B.1 and B.2 describe one message and count once; bad ones are named."""
    run = ArfRun(source="arf", now=NOW)
    items = ingest_reports(run, [SAMPLES])
    assert run.reports == 7 and run.duplicates == 1 and run.ignored == 1
    assert sorted(Path(w).name for w, _ in run.malformed) == [
        "malformed-bad-ip.eml", "malformed-no-type.eml", "malformed-plain.eml",
    ]  # fmt: skip
    assert {(str(e.subject), e.cause, e.related_domain) for e in items} == {
        ("192.0.2.1", Cause.SPAM, None),
        ("2001:db8:5::25", Cause.SPAM, Domain("news.shop.example")),
    }
    assert all(e.key.startswith("arf:arf:") for e in items)


def test_mbox_and_maildir_are_read(tmp_path: Path) -> None:
    """Reports inside an mbox file and a Maildir folder are found like single files."""
    box = mailbox.mbox(tmp_path / "fbl.mbox")
    box.add((SAMPLES / "rfc5965-b2.eml").read_bytes())
    box.add((SAMPLES / "dkim-signed.eml").read_bytes())
    box.close()
    md = mailbox.Maildir(tmp_path / "Maildir")
    md.add((SAMPLES / "dkim-signed.eml").read_bytes())
    md.add((SAMPLES / "malformed-plain.eml").read_bytes())
    found = [where for where, _ in messages(tmp_path / "fbl.mbox")] + [
        w for w, _ in messages(tmp_path / "Maildir")
    ]
    assert len(found) == 4 and found[0].endswith("fbl.mbox#1")
    run = ArfRun(source="arf", now=NOW)
    items = ingest_reports(run, [tmp_path / "fbl.mbox", tmp_path / "Maildir"])
    assert len(items) == 2 and run.duplicates == 1 and len(run.malformed) == 1
