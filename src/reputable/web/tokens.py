"""API tokens: random secrets shown once, stored as SHA-256 digests, checked in constant time.

A secret is 256 random bits, so one SHA-256 is enough (no password hashing: nothing to
guess). Every presented secret is compared with every valid digest with
``hmac.compare_digest``, so the time taken says nothing about which digest came close.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from typing import Final

from reputable.core.errors import InputError
from reputable.store.sqlite_tokens import TokenRecord

PREFIX: Final = "rpt_"
_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Scope(enum.StrEnum):
    """What a token may do."""

    EVIDENCE_WRITE = "evidence:write"
    ADMIN = "admin"
    BOUNCER = "bouncer"


def parse_scopes(texts: Iterable[str]) -> frozenset[Scope]:
    """Return the scopes named in *texts*; raise InputError naming the valid ones."""
    found: set[Scope] = set()
    for text in texts:
        for part in text.replace(",", " ").split():
            try:
                found.add(Scope(part))
            except ValueError:
                valid = ", ".join(s.value for s in Scope)
                raise InputError(f"unknown scope {part!r}; expected one of: {valid}") from None
    if not found:
        raise InputError("give at least one --scope: " + ", ".join(s.value for s in Scope))
    return frozenset(found)


def check_name(name: str) -> str:
    """Return *name* if it is a valid token name, else raise InputError."""
    if not _NAME.match(name):
        raise InputError(
            f"token name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a"
            " letter or digit"
        )
    return name


def new_secret() -> str:
    """Return a fresh token secret (shown to the operator once, never stored)."""
    return PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """Return the stored form of *secret*: hex SHA-256."""
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def authenticate(records: Iterable[TokenRecord], secret: str) -> TokenRecord | None:
    """Return the valid token whose digest matches *secret*, comparing every one in constant time."""
    presented = digest(secret).encode()
    found: TokenRecord | None = None
    for record in records:
        if hmac.compare_digest(presented, record.digest.encode()) and record.revoked_at is None:
            found = record
    return found
