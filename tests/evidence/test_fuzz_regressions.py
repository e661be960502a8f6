"""Inputs bench/fuzz.py found crashing the parsers: each now gets a clean answer."""

from __future__ import annotations

import contextlib
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


@pytest.mark.parametrize("name", ["arf-header-object.eml", "arf-refold.eml", "arf-overflow.eml"])
def test_saved_fuzz_crashes_get_a_clean_answer(name: str) -> None:
    """The reproducers bench/fuzz.py saved parse, or fail with ArfError, and nothing else."""
    data = (Path(__file__).parent / "fuzz_regressions" / name).read_bytes()
    with contextlib.suppress(arf.ArfError):
        arf.parse(data)
