"""Forms and sessions: CSRF tokens, admin sessions stored hashed, bounded form bodies.

* Public forms use a double-submit token: a random cookie ``rp_csrf`` and, in the form, its
  HMAC under a per-process key; a post without both, or with a wrong one, is refused.
* Admin sessions: logging in with an admin API token (checked against the hashed token store)
  creates a random session secret sent as the ``rp_session`` cookie; the server keeps only its
  SHA-256, with the token's name, a per-session CSRF token and an expiry. Sessions live in the
  server's memory: a restart logs everyone out.
* Cookies are HttpOnly and SameSite=Strict, and Secure when the request came over TLS.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs

from fastapi import Request
from starlette.responses import Response

CSRF_COOKIE: Final = "rp_csrf"
SESSION_COOKIE: Final = "rp_session"
MAX_FORM: Final = 16 * 1024  # bytes of a posted form; more is refused with 413
MAX_FIELDS: Final = 20


class FormRefused(Exception):
    """A posted form that is refused before it is read: its status and the reader's message."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


@dataclass(frozen=True, slots=True)
class Session:
    """One logged-in operator (kept under the SHA-256 of its cookie secret)."""

    token_name: str
    csrf: str
    expires_at: float


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


class Sessions:
    """Admin sessions by hashed secret, with the CSRF key of public forms."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.key = secrets.token_bytes(32)
        self._by_digest: dict[str, Session] = {}
        self._lock = threading.Lock()

    def public_token(self, cookie: str) -> str:
        """Return the form token that matches the CSRF cookie value *cookie*."""
        return hmac.new(self.key, cookie.encode(), hashlib.sha256).hexdigest()[:40]

    def start(self, token_name: str, now: float | None = None) -> tuple[str, Session]:
        """Create a session for *token_name*; return its cookie secret (never stored) and it."""
        secret = secrets.token_urlsafe(32)
        session = Session(token_name, secrets.token_urlsafe(24), (now or time.time()) + self.ttl)
        with self._lock:
            self._by_digest[_digest(secret)] = session
        return secret, session

    def find(self, secret: str | None, now: float | None = None) -> Session | None:
        """Return the live session of cookie *secret* (None when unknown or expired)."""
        if not secret:
            return None
        key = _digest(secret)
        moment = now or time.time()
        with self._lock:
            session = self._by_digest.get(key)
            if session is not None and session.expires_at <= moment:
                del self._by_digest[key]
                return None
        return session

    def end(self, secret: str | None) -> None:
        """Forget the session of cookie *secret*."""
        if secret:
            with self._lock:
                self._by_digest.pop(_digest(secret), None)

    def __len__(self) -> int:
        return len(self._by_digest)


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """Set an HttpOnly, SameSite=Strict cookie (Secure over TLS)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def csrf_cookie(request: Request) -> tuple[str, bool]:
    """Return the request's CSRF cookie value (or a new one) and whether it is new."""
    value = request.cookies.get(CSRF_COOKIE, "")
    if len(value) >= 16 and value.isascii():
        return value, False
    return secrets.token_urlsafe(24), True


async def read_form(request: Request) -> dict[str, str]:
    """Return the urlencoded form of *request* (one value per field); raise FormRefused."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise FormRefused(
            415, "Not a form", "Send the form from the page (application/x-www-form-urlencoded)."
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM:
        raise FormRefused(413, "Form too large", _too_large())
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise FormRefused(413, "Form too large", _too_large())
    try:
        parsed = parse_qs(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
            strict_parsing=False,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormRefused(400, "Unreadable form", f"The form could not be read ({exc}).") from exc
    return {name: values[0] for name, values in parsed.items()}


def _too_large() -> str:
    return f"The form is larger than {MAX_FORM // 1024} KB; shorten the note and send it again."


def check_public(sessions: Sessions, request: Request, form: dict[str, str]) -> None:
    """Raise FormRefused unless the form carries the token matching the CSRF cookie."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get("csrf", "")
    if not cookie or not sent:
        raise FormRefused(403, "Form expired", _expired("the form's security token is missing"))
    if not hmac.compare_digest(sessions.public_token(cookie), sent):
        raise FormRefused(403, "Form expired", _expired("the form's security token is wrong"))


def check_admin(session: Session, form: dict[str, str]) -> None:
    """Raise FormRefused unless the form carries the session's CSRF token."""
    sent = form.get("csrf", "")
    if not sent:
        raise FormRefused(403, "Form expired", _expired("the form's security token is missing"))
    if not hmac.compare_digest(session.csrf, sent):
        raise FormRefused(403, "Form expired", _expired("the form's security token is wrong"))


def _expired(why: str) -> str:
    return (
        f"This form was refused: {why}. Open the page again (cookies must be allowed for this"
        " site) and send the form from there."
    )
