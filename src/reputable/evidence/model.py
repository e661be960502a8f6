"""The value of stage 1: one piece of evidence."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from typing import Any, Final, TypeAlias

from reputable.core.address import Domain
from reputable.core.cause import Cause

EvidenceSubject: TypeAlias = IPv4Address | IPv6Address | Domain

#: IPv6 evidence is scored per /64: one host, one /64 (a customer usually gets a whole /64).
IPV6_HOST_PREFIX = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """One fact about one subject: what was seen, why it matters, when, and how much."""

    subject: EvidenceSubject
    cause: Cause
    source: str
    observed_at: datetime
    weight: float = 1.0
    related_domain: Domain | None = None
    detail: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", evidence_key(self))

    @property
    def target(self) -> str:
        """What this evidence is scored against (hosted content: the domain; behaviour: the IP)."""
        return scoring_target(self.subject, self.related_domain, self.cause)


#: Causes that describe what a site hosts: they belong to the related domain. Everything else
#: (sending spam, harvesting, brute force, relaying, proxying, PTR) belongs to the IP that did it.
HOSTED_CAUSES: Final = frozenset({Cause.MALWARE_HOST})


def scoring_target(
    subject: EvidenceSubject, related_domain: Domain | None, cause: Cause | None = None
) -> str:
    """Return the scored subject: the related domain for hosted content (or an unknown cause),
    else the IPv6 /64, else the subject."""
    if related_domain is not None and (cause is None or cause in HOSTED_CAUSES):
        return related_domain.name
    if isinstance(subject, IPv6Address):
        return str(IPv6Network(f"{subject}/{IPV6_HOST_PREFIX}", strict=False))
    return str(subject)


def json_encoder(item_separator: str, key_separator: str) -> Callable[[Any], str]:
    """Return ``json.dumps(obj, sort_keys=True, default=str, separators=...)`` as a function.

    json.dumps builds a new encoder on every call with these options; building the C encoder
    once halves the cost per piece of evidence (bench/policy_scale.py). Without circular
    reference checks: details are JSON data.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the plain encoder, same output
        return json.JSONEncoder(
            sort_keys=True, default=str, separators=(item_separator, key_separator)
        ).encode
    encode = make(
        None, str, json.encoder.encode_basestring_ascii, None,
        key_separator, item_separator, True, False, True,
    )  # fmt: skip
    return lambda obj: "".join(encode(obj, 0))


#: The encoder of the key's ``detail`` part: the same settings as the whole key (see below).
_KEY_JSON: Final = json_encoder(",", ":")
_KEY_STR: Final = json.encoder.encode_basestring_ascii  # what json.dumps uses for a str


def evidence_key(item: Evidence) -> str:
    """Return a stable idempotency key derived from every field of *item*.

    The key is the BLAKE2b-128 digest of the compact, key-sorted JSON array
    ``[subject, cause, source, observed_at epoch seconds, weight, domain or null, detail]``.
    The array is written piece by piece with the encoder json.dumps uses for each piece,
    which gives the same text (and the same keys as earlier releases) at a fraction of the
    cost; weights that are not plain floats or ints take the general path.
    """
    weight = item.weight
    if type(weight) is float:
        weight_text = float.__repr__(weight)
    elif type(weight) is int:
        weight_text = int.__repr__(weight)
    else:
        return _generic_key(item)
    observed = item.observed_at.timestamp()
    if not math.isfinite(observed) or type(item.source) is not str:
        return _generic_key(item)  # unusual values: leave them to json.dumps
    domain = item.related_domain
    detail = item.detail
    raw = (
        f"[{_KEY_STR(str(item.subject))},{_KEY_STR(item.cause.value)},{_KEY_STR(item.source)},"
        f"{float.__repr__(observed)},{weight_text},"
        f"{_KEY_STR(domain.name) if domain else 'null'},"
        f"{'{}' if type(detail) is dict and not detail else _KEY_JSON(detail)}]"
    )
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


def _generic_key(item: Evidence) -> str:
    """The reference definition of :func:`evidence_key` (one json.dumps of the whole array)."""
    raw = json.dumps(
        [
            str(item.subject),
            item.cause.value,
            item.source,
            item.observed_at.timestamp(),
            item.weight,
            item.related_domain.name if item.related_domain else None,
            item.detail,
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """A stored piece of evidence, as explain shows it."""

    id: int
    subject: str
    target: str
    cause: Cause
    source: str
    observed_at: datetime
    weight: float
    domain: str | None
    detail: dict[str, object]
