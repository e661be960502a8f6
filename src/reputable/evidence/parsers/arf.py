"""Abuse Reporting Format (ARF, RFC 5965) feedback reports — pure: bytes in, a report or an error.

Attribution rule (shared hosting): a report names a ``related_domain`` only when the reported
message was DKIM-signed by that domain and the signature passed (an ``Authentication-Results``
``dkim=pass header.d=D``, in the report or the original headers), and ``Reported-Domain``
(when given) is D or under D. Anything else — a bare ``Reported-Domain``, the envelope sender —
can be forged, so the evidence stays on the IP.
"""

from __future__ import annotations

import email
import email.errors
import email.policy
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.parser import HeaderParser
from email.utils import parsedate_to_datetime
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Final

from reputable.core.address import Domain, parse_domain
from reputable.core.errors import InputError, SubjectError

NAME: Final = "arf"
#: Feedback types that are complaints, and how much each counts (RFC 5965 §7.3 registry).
WEIGHTS: Final = {"abuse": 1.0, "fraud": 1.5, "virus": 1.0, "other": 0.5}
#: Feedback types that are not complaints: counted, not turned into evidence.
IGNORED: Final = frozenset({"not-spam", "auth-failure"})
_DKIM_PASS: Final = re.compile(
    r"\bdkim=pass\b[^;]*?\bheader\.(?:d=|i=[^@\s;]*@)([A-Za-z0-9._-]+)", re.I
)
_RECEIVED_IP: Final = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")


class ArfError(InputError):
    """A message that is not a well-formed feedback report; the message says why."""


@dataclass(frozen=True, slots=True)
class ArfReport:
    """What one feedback report says about one message."""

    feedback_type: str
    source_ip: IPv4Address | IPv6Address
    arrival: datetime | None
    reported_domain: str
    original_mail_from: str
    original_rcpt_to: str
    message_id: str  # of the reported (original) message; the deduplication key
    subject: str
    user_agent: str
    dkim_domain: Domain | None  # set only when the attribution rule above holds

    @property
    def weight(self) -> float:
        """How much this complaint counts (0 for types that are not complaints)."""
        return WEIGHTS.get(self.feedback_type, 0.0)


def _date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError, OverflowError):  # Overflow: a 30-digit year
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


class _TextHeaders(email.policy.Compat32):
    """compat32, but a header with raw 8-bit bytes reads as text, not as an email Header
    object that has no str methods (found by bench/fuzz.py)."""

    def header_fetch_parse(self, name: str, value: str) -> str:  # the email package's name
        return str(super().header_fetch_parse(name, value))


_POLICY: Final = _TextHeaders()


def _parts(msg: Message) -> tuple[Message, Message | None]:
    fields: Message | None = None
    original: Message | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/feedback-report" and fields is None:
            payload = part.get_payload()
            if isinstance(payload, list):  # parsed as message/*: header blocks
                text = "".join(p.as_string() for p in payload if isinstance(p, Message))
            else:
                raw = part.get_payload(decode=True)
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
            fields = HeaderParser(policy=_POLICY).parsestr(text.lstrip())
        elif ctype in ("message/rfc822", "text/rfc822-headers") and original is None:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                original = payload[0]
            else:
                raw = part.get_payload(decode=True)
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
                original = HeaderParser(policy=_POLICY).parsestr(text)
    if fields is None:
        raise ArfError("no message/feedback-report part")
    return fields, original


def _source_ip(fields: Message, original: Message | None) -> IPv4Address | IPv6Address:
    text = (fields.get("Source-IP") or "").strip()
    if not text and original is not None:
        received = original.get_all("Received") or []
        for header in received:  # the first Received with an address is the receiving hop
            found = _RECEIVED_IP.search(str(header))
            if found:
                text = found.group(1)
                break
    if not text:
        raise ArfError("no Source-IP and no Received header with an address")
    try:
        return ip_address(text.strip("[]"))
    except ValueError as exc:
        raise ArfError(f"bad Source-IP {text!r}") from exc


def _dkim_domain(fields: Message, original: Message | None, reported: str) -> Domain | None:
    results = list(fields.get_all("Authentication-Results") or [])
    if original is not None:
        results += original.get_all("Authentication-Results") or []
    for header in results:
        for found in _DKIM_PASS.finditer(str(header)):
            try:
                domain = parse_domain(found.group(1))
            except SubjectError:
                continue
            if not reported or reported == domain.name or reported.endswith("." + domain.name):
                return parse_domain(reported) if reported else domain
    return None


def parse(data: bytes) -> ArfReport:
    """Return the feedback report in one RFC 5322 message; raise ArfError saying what is wrong."""
    msg = email.message_from_bytes(data, policy=_POLICY)
    if msg.get_content_type() != "multipart/report":
        raise ArfError(f"not a report: Content-Type is {msg.get_content_type()}")
    if (msg.get_param("report-type") or "").lower() != "feedback-report":  # type: ignore[union-attr]  # a str param
        raise ArfError("multipart/report without report-type=feedback-report")
    try:
        fields, original = _parts(msg)
    except (email.errors.MessageError, UnicodeError) as exc:  # found by bench/fuzz.py
        raise ArfError(f"malformed report part: {exc}") from exc
    feedback_type = (fields.get("Feedback-Type") or "").strip().lower()
    if not feedback_type:
        raise ArfError("no Feedback-Type field")
    reported = (fields.get("Reported-Domain") or "").strip().lower().rstrip(".")
    message_id = ((original.get("Message-ID") if original is not None else None) or "").strip()
    return ArfReport(
        feedback_type=feedback_type,
        source_ip=_source_ip(fields, original),
        arrival=_date(fields.get("Arrival-Date") or fields.get("Received-Date"))
        or _date(msg.get("Date")),
        reported_domain=reported,
        original_mail_from=(fields.get("Original-Mail-From") or "").strip().strip("<>"),
        original_rcpt_to=(fields.get("Original-Rcpt-To") or "").strip().strip("<>"),
        message_id=message_id,
        subject=str((original.get("Subject") if original is not None else "") or "")[:200],
        user_agent=(fields.get("User-Agent") or "").strip(),
        dkim_domain=_dkim_domain(fields, original, reported),
    )


def dedup_key(report: ArfReport) -> str:
    """Return the key that makes two reports about one original message count once."""
    if report.message_id:
        return report.message_id
    raw = f"{report.source_ip}|{report.arrival}|{report.original_mail_from}|{report.subject}"
    return "digest:" + hashlib.blake2b(raw.encode(), digest_size=12).hexdigest()
