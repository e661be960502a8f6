"""Tell a requester what the operator decided about their removal request, by e-mail.

Mail goes through the relay named in ``[mail]`` (docs/web.md) with the standard library's
``smtplib``, in a worker thread, under a timeout. Without ``mail.relay`` nothing is sent;
a relay that fails is logged (``removal_mail_failed``) and the decision stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from reputable.config import Config
from reputable.core.errors import ConfigError

if TYPE_CHECKING:  # smtplib, ssl and email load only when a decision is mailed (fast start-up)
    from email.message import EmailMessage

_KEYS: Final = frozenset({"relay", "from", "starttls", "username", "password", "timeout", "site"})


@dataclass(frozen=True, slots=True, kw_only=True)
class MailSettings:
    """Where decision mail goes out."""

    relay: tuple[str, int] | None  # None: no mail
    sender: str = "reputable@localhost"
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout: float = 10.0
    site: str = ""  # base URL of the pages, for the status link (e.g. https://rbl.example)


def mail_settings(config: Config) -> MailSettings:
    """Return the ``[mail]`` settings of *config*; raise ConfigError naming a bad key."""
    raw: Any = config.extra.get("mail", {})
    if not isinstance(raw, dict):
        raise ConfigError("[mail] must be a table")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigError(f"[mail]: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    relay_text = str(raw.get("relay", ""))
    relay = None
    if relay_text:
        host, sep, port = relay_text.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(
                f'mail.relay = {relay_text!r}: expected "HOST:PORT", e.g. "127.0.0.1:25"'
            )
        relay = (host.strip("[]"), int(port))
    sender = str(raw.get("from", "reputable@localhost"))
    if "@" not in sender:
        raise ConfigError(f"mail.from = {sender!r}: give an e-mail address")
    try:
        timeout = float(raw.get("timeout", 10))
    except (TypeError, ValueError):
        raise ConfigError(f"mail.timeout = {raw.get('timeout')!r}: give seconds, e.g. 10") from None
    return MailSettings(
        relay=relay,
        sender=sender,
        starttls=bool(raw.get("starttls", False)),
        username=str(raw.get("username", "")),
        password=str(raw.get("password", "")),
        timeout=timeout,
        site=str(raw.get("site", "")).rstrip("/"),
    )


def decision_message(
    settings: MailSettings, *, to: str, request_id: int, subject: str, granted: bool, reason: str
) -> EmailMessage:
    """Return the e-mail telling *to* that request *request_id* was granted or denied, and why."""
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    verdict = "granted: the listing is removed" if granted else "denied: the listing stays"
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = (
        f"Removal request #{request_id} for {subject}: {'granted' if granted else 'denied'}"
    )
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=settings.sender.rsplit("@", 1)[-1])
    link = f"{settings.site}/delist/{request_id}" if settings.site else f"/delist/{request_id}"
    message.set_content(
        f"Your removal request #{request_id} for {subject} was {verdict}.\n\n"
        f"The operator's reason: {reason}\n\n"
        f"Status page: {link}\n"
        + (
            "\nDNS answers follow within seconds; resolvers may remember the old answer for"
            " up to the zone's TTL.\n"
            if granted
            else "\nFix the cause described on the lookup page, then ask again.\n"
        )
    )
    return message


def send(settings: MailSettings, message: EmailMessage) -> None:
    """Send *message* through the relay (blocking; run it in a thread); raise OSError/SMTPException."""
    if settings.relay is None:
        return
    import smtplib
    import ssl

    host, port = settings.relay
    with smtplib.SMTP(host, port, timeout=settings.timeout) as smtp:
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.username:
            smtp.login(settings.username, settings.password)
        smtp.send_message(message)
