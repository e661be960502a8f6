"""Sending watch alerts: a JSON POST to a webhook and/or an e-mail through a configured server."""

from __future__ import annotations

import asyncio
import json
import smtplib
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import Final

from reputable.checker.watch import Change, WatchConfig, alert_json, alert_text

TIMEOUT: Final = 10.0


class AlertError(Exception):
    """An alert could not be delivered; the message names the channel and the reason."""


def _post(url: str, body: bytes, timeout: float) -> int:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    # No proxy from the environment: the alert goes exactly where the watch file says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=timeout) as response:
        return int(response.status)


def _mail(server: str, message: EmailMessage, timeout: float) -> None:
    host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "25")
    with smtplib.SMTP(host, int(port or 25), timeout=timeout) as client:
        client.send_message(message)


async def send_webhook(url: str, changes: Sequence[Change], now: datetime) -> None:
    """POST the changes as JSON to *url*; raise AlertError on any failure."""
    body = json.dumps(alert_json(changes, now)).encode()
    try:
        async with asyncio.timeout(TIMEOUT + 1):
            status = await asyncio.to_thread(_post, url, body, TIMEOUT)
    except (OSError, urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise AlertError(f"webhook {url}: {exc}") from exc
    if not 200 <= status < 300:
        raise AlertError(f"webhook {url}: answered HTTP {status}")


async def send_email(config: WatchConfig, changes: Sequence[Change]) -> None:
    """Mail the changes through the configured SMTP server; raise AlertError on any failure."""
    message = EmailMessage()
    message["From"] = config.email_from
    message["To"] = ", ".join(config.email_to)
    subjects = sorted({c.subject for c in changes})
    message["Subject"] = (
        f"reputable watch: {len(changes)} change(s) for {', '.join(subjects)[:120]}"
    )
    message.set_content(alert_text(changes))
    try:
        async with asyncio.timeout(TIMEOUT + 1):
            await asyncio.to_thread(_mail, config.email_server, message, TIMEOUT)
    except (OSError, smtplib.SMTPException, TimeoutError, ValueError) as exc:
        raise AlertError(f"e-mail via {config.email_server}: {exc}") from exc


async def send_alerts(config: WatchConfig, changes: Sequence[Change], now: datetime) -> None:
    """Send *changes* on every configured channel; raise AlertError if any channel failed."""
    if not changes:
        return
    errors: list[str] = []
    if config.webhook_url:
        try:
            await send_webhook(config.webhook_url, changes, now)
        except AlertError as exc:
            errors.append(str(exc))
    if config.email_server:
        try:
            await send_email(config, changes)
        except AlertError as exc:
            errors.append(str(exc))
    if errors:
        raise AlertError("; ".join(errors))
