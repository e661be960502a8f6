"""Rules every listing obeys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.core.errors import ListingRefused
from reputable.listings.rules import Limits, check_removable, new_listing

NOW = datetime(2026, 11, 29, tzinfo=UTC)


def make(subject: str, **kw: object) -> object:
    """Return new_listing for *subject* with defaults."""
    args: dict[str, object] = {
        "reason": "",
        "source": "t",
        "now": NOW,
        "ttl": None,
        "limits": Limits(),
        **kw,
    }
    return new_listing(parse_subject(subject), Cause.SPAM, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "subject", ["127.0.0.1", "127.0.0.0/24", "127.0.0.0/16", "::ffff:127.0.0.1"]
)
def test_never_list_localhost(subject: str) -> None:
    """127.0.0.1 and any range holding it are refused (RFC 5782 §5)."""
    with pytest.raises(ListingRefused, match="never list"):
        make(subject, force=True)


def test_invalid_domain_never_listed() -> None:
    """The 'invalid' test domain is refused."""
    with pytest.raises(ListingRefused, match="invalid"):
        make("invalid")


def test_breadth_limit_and_force() -> None:
    """A range broader than the maximum needs force."""
    with pytest.raises(ListingRefused, match="--force"):
        make("10.0.0.0/8")
    assert make("10.0.0.0/8", force=True)
    with pytest.raises(ListingRefused, match="/32"):
        make("2001:d00::/24")
    assert make("2001:db8::/32")


def test_ttl_sets_expiry() -> None:
    """A ttl gives an expiry that far from now; the default reason names the cause."""
    item = make("198.51.100.7", ttl=timedelta(days=7))
    assert item.expires_at == NOW + timedelta(days=7)  # type: ignore[attr-defined]
    assert item.reason == "listed for spam"  # type: ignore[attr-defined]


def test_clean_never_lists() -> None:
    """The clean cause cannot make a listing."""
    with pytest.raises(ListingRefused, match="clean"):
        new_listing(
            parse_subject("198.51.100.7"),
            Cause.CLEAN,
            reason="",
            source="t",
            now=NOW,
            ttl=None,
            limits=Limits(),
        )


@pytest.mark.parametrize("subject", ["127.0.0.2", "test", "::ffff:7f00:2"])
def test_test_points_cannot_be_removed(subject: str) -> None:
    """RFC 5782 test points stay listed."""
    with pytest.raises(ListingRefused, match="test point"):
        check_removable(parse_subject(subject))
