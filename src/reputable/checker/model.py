"""Values of a check: one result per zone, one finding per diagnostic, one report per subject."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, Literal, TypeAlias

from reputable.core.cause import Cause

#: The checker's findings use the causes of DESIGN.md plus ``mail_auth`` (SPF, DKIM, DMARC).
MAIL_AUTH: Final = "mail_auth"
FindingCause: TypeAlias = Cause | Literal["mail_auth"]


class Status(enum.StrEnum):
    """What one zone said about one subject."""

    LISTED = "listed"
    CLEAN = "clean"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    ERROR = "error"


class Severity(enum.StrEnum):
    """How much a finding hurts delivery: ``ok`` and ``info`` are not problems."""

    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def is_problem(self) -> bool:
        """True for warnings and errors, the findings the verdict line counts."""
        return self in (Severity.WARNING, Severity.ERROR)


class Verdict(enum.StrEnum):
    """Overall answer of a check; each maps to one exit code (see docs/checker.md)."""

    CLEAN = "clean"
    LISTED = "listed"
    INCOMPLETE = "incomplete"
    ERROR = "error"


#: Exit code of each verdict: scripts and monitoring rely on these numbers.
EXIT_CODE: Final[dict[Verdict, int]] = {
    Verdict.CLEAN: 0,
    Verdict.LISTED: 1,
    Verdict.ERROR: 2,
    Verdict.INCOMPLETE: 3,
}


class Removal(enum.StrEnum):
    """How a list removes an entry once its cause is fixed (the catalogue's ``removal`` key)."""

    SELF_SERVICE = "self_service"  # the listed party asks at the list's removal page
    EXPIRY = "expiry"  # entries expire by themselves after a quiet time; no request needed
    NETWORK = "network"  # the listing is of the network (allocation, ASN): the provider must act
    PERMANENT = "permanent"  # lists what the address is (a TOR exit, a country): not removable
    UNKNOWN = "unknown"  # the catalogue does not say: read the list's own page


@dataclass(frozen=True, slots=True, kw_only=True)
class Delisting:
    """How one list removes one entry: the method, its quiet time, and whether it sells speed.

    ``paid_express`` is reported so the admin is not surprised by the offer; reputable never
    recommends paying: the free path is always given first.
    """

    method: Removal = Removal.UNKNOWN
    expires: timedelta | None = None  # quiet time after the last report, when documented
    paid_express: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneResult:
    """The answer of one DNSBL/RHSBL/DNSWL zone about one subject."""

    zone: str
    allow: bool
    status: Status
    codes: tuple[str, ...] = ()
    meaning: str = ""
    causes: tuple[Cause, ...] = ()
    txt: str = ""
    removal_url: str = ""
    operator: str = ""
    subject: str = ""  # set when the result is about another address (a domain's MX host)
    delisting: Delisting | None = None  # set on listings: how this list removes this entry


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One diagnostic: what was seen, which cause it maps to, how bad, and what to do."""

    check: str
    cause: FindingCause
    severity: Severity
    message: str
    remediation: str = ""
    #: True when the check could not be made (resolver timeout, SERVFAIL, REFUSED): the finding
    #: says nothing about the record itself, so it is not a problem and watch keeps the old state.
    inconclusive: bool = False

    @property
    def is_problem(self) -> bool:
        """True for warnings and errors about the mail setup (not for inconclusive checks)."""
        return self.severity.is_problem and not self.inconclusive


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalVerdict:
    """The local reputable store's verdict on the subject (when a local store exists)."""

    subject: str
    listed: bool
    summary: str
    details: tuple[str, ...] = ()
    document: Mapping[str, Any] = field(default_factory=dict)  # the explain JSON, for --json


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """Everything the checker found about one subject, in catalogue order."""

    subject: str
    listings: tuple[ZoneResult, ...] = ()
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    error: str = ""
