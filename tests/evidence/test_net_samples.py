"""The annotated sample logs of the network-log parsers, checked line by line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reputable.evidence.detectors.net import NetDetector
from reputable.evidence.detectors.netconfig import NetSettings
from reputable.evidence.parsers.net import NET_PARSERS, parse_lines
from reputable.evidence.parsers.netbase import NetEvent

SAMPLES = Path(__file__).parents[1] / "samples"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def read_sample(path: Path) -> list[tuple[Any, str]]:
    """Return (expected object or None, data line) for every ``# expect:`` pair of *path*."""
    pairs: list[tuple[Any, str]] = []
    expect: Any = ...
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("# expect:"):
            expect = json.loads(raw.removeprefix("# expect:"))
        elif raw.startswith("#"):
            continue
        else:
            assert expect is not ..., f"{path}: data line without # expect: {raw!r}"
            pairs.append((expect, raw))
            expect = ...
    return pairs


@pytest.mark.parametrize("fmt", sorted(NET_PARSERS))
def test_sample_log_matches_its_expect_lines(fmt: str) -> None:
    """Every data line of samples/<format>.log parses to what its ``# expect:`` line says."""
    pairs = read_sample(SAMPLES / f"{fmt}.log")
    assert pairs, f"samples/{fmt}.log has no annotated lines"
    detector = NetDetector(NetSettings(), source="test")
    results = list(parse_lines(fmt, [line for _, line in pairs], now=NOW))
    assert len(results) == len(pairs)
    for (expect, line), got in zip(pairs, results, strict=True):
        if expect is None:
            assert not isinstance(got, NetEvent), f"{fmt}: expected no event for {line!r}"
            continue
        assert isinstance(got, NetEvent), f"{fmt}: expected an event for {line!r}, got {got}"
        record = got.to_json()
        record["tags"] = list(detector.tags(got))
        for key, value in expect.items():
            assert record.get(key) == value, f"{fmt}: {key} of {line!r}: {record}"
