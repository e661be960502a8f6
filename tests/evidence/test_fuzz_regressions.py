"""Inputs bench/fuzz.py found crashing the parsers: each now gets a clean answer."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest

from reputable.evidence.parsers import arf
from reputable.evidence.parsers.weblog import web_time

SAMPLE = (Path(__file__).parents[1] / "samples" / "arf" / "rfc5965-b1.eml").read_bytes()


def test_web_time_with_a_40_digit_second_is_no_time() -> None:
    """A web-log time whose seconds overflow a C long is unreadable, not an OverflowError."""
    assert web_time("29/Nov/2026:08:00:00" + "9" * 40 + " -0500") is None


def test_arf_date_with_a_huge_year_is_ignored() -> None:
    """A Date header with a 30-digit year leaves the arrival unknown instead of crashing."""
    data = SAMPLE.replace(b"Date: Thu, 8 Mar 2005", b"Date: Thu, 8 Mar " + b"9" * 30)
    report = arf.parse(data)
    assert report.feedback_type == "abuse"


@pytest.mark.parametrize(
    ("name", "feedback_type"),
    # The Date header is unreadable (a non-ASCII byte in the year; a 40-digit zone offset),
    # so the arrival is unknown, but the report fields written in the file are read as written.
    [("arf-header-object.eml", "pam"), ("arf-overflow.eml", "not-spam")],
)
def test_saved_fuzz_crashes_with_a_bad_date_still_parse(name: str, feedback_type: str) -> None:
    """A reproducer whose only fault is its Date header parses with the arrival left unknown."""
    report = arf.parse((Path(__file__).parent / "fuzz_regressions" / name).read_bytes())
    assert report.feedback_type == feedback_type
    assert report.source_ip == ip_address("198.51.100.7")
    assert report.arrival is None


def test_saved_fuzz_crash_with_a_vertical_tab_is_an_arf_error() -> None:
    """A vertical tab inside a report header (it refolds into a fake header) is an ArfError naming the part."""
    data = (Path(__file__).parent / "fuzz_regressions" / "arf-refold.eml").read_bytes()
    with pytest.raises(arf.ArfError, match="malformed report part"):
        arf.parse(data)
