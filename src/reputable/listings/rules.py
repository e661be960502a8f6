"""Rules every listing obeys, whoever makes it (pure): test points and maximum breadth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Final

from reputable.core.address import Domain, Subject, format_subject
from reputable.core.cause import Cause
from reputable.core.errors import InputError, ListingRefused
from reputable.core.limits import reason_problem
from reputable.listings.model import Listing

#: RFC 5782 §5: these are always listed and cannot be removed.
TEST_POINTS_V4: Final = IPv4Network("127.0.0.2/32")
TEST_POINT_DOMAIN: Final = Domain("test")
#: RFC 5782 §5: these are never listed.
NEVER_V4: Final = ip_address("127.0.0.1")
NEVER_V6: Final = ip_address("::ffff:127.0.0.1")
NEVER_DOMAIN: Final = Domain("invalid")
TEST_POINT_REASON: Final = "RFC 5782 test point: always listed"


@dataclass(frozen=True, slots=True)
class Limits:
    """The broadest networks a listing may cover unless forced."""

    max_prefix_v4: int = 16
    max_prefix_v6: int = 32


def check_listable(subject: Subject, limits: Limits, *, force: bool = False) -> None:
    """Raise ListingRefused when *subject* may not be listed; say why and what to do."""
    text = format_subject(subject)
    if isinstance(subject, Domain):
        if subject == NEVER_DOMAIN or subject.name.endswith(".invalid"):
            raise ListingRefused(f"{text}: 'invalid' is never listed (RFC 5782 §5 test point)")
        return
    never = NEVER_V4 if isinstance(subject, IPv4Network) else NEVER_V6
    if never in subject:
        raise ListingRefused(
            f"{text} contains {never}, which a DNSBL must never list (RFC 5782 §5);"
            " list a narrower range"
        )
    limit = limits.max_prefix_v4 if isinstance(subject, IPv4Network) else limits.max_prefix_v6
    if subject.prefixlen < limit and not force:
        raise ListingRefused(
            f"{text} is broader than /{limit}, the configured maximum"
            f" (listings.max_prefix_v{subject.version}); use --force if you mean it"
        )


def check_removable(subject: Subject) -> None:
    """Raise ListingRefused when *subject* is a test point that must stay listed."""
    if subject in (TEST_POINTS_V4, TEST_POINT_DOMAIN) or subject == IPv6Network(
        "::ffff:7f00:2/128"
    ):
        raise ListingRefused(
            f"{format_subject(subject)} is an RFC 5782 test point; it is always listed"
        )


def new_listing(
    subject: Subject,
    cause: Cause,
    *,
    reason: str,
    source: str,
    now: datetime,
    ttl: timedelta | None,
    limits: Limits,
    force: bool = False,
) -> Listing:
    """Return a checked listing of *subject* for *cause* starting at *now*."""
    if not cause.lists:
        raise ListingRefused("cause 'clean' never lists anything; use `reputable allow add`")
    check_listable(subject, limits, force=force)
    if ttl is not None and ttl <= timedelta(0):
        raise ListingRefused(f"--ttl must be positive, got {ttl}")
    problem = reason_problem(reason.strip())
    if problem is not None:
        raise InputError(f"{format_subject(subject)}: {problem}")
    return Listing(
        subject=subject,
        cause=cause,
        reason=reason.strip() or f"listed for {cause.value}",
        source=source,
        listed_at=now,
        expires_at=None if ttl is None else now + ttl,
    )
