"""Fixtures for the page tests: a server whose TXT URLs point at itself, an SMTP relay."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.smtp import SMTP, Envelope, Session

from reputable.testing import RunningServer, free_port, start_smtp, write_config
from tests.web.conftest import Api, wait_for

NDJSON = {"content-type": "application/x-ndjson"}


@dataclass
class Inbox:
    """Messages the loopback SMTP relay received."""

    messages: list[Message] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Keep the message."""
        raw = envelope.original_content or b""
        self.messages.append(message_from_bytes(raw))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


def smtp_relay() -> Iterator[tuple[str, Inbox]]:
    """Run an aiosmtpd relay on loopback; yield its address and inbox."""
    inbox = Inbox()
    controller, port = start_smtp(inbox)
    try:
        yield f"127.0.0.1:{port}", inbox
    finally:
        controller.stop()


def start_site(directory: Path, relay: str = "", web: str = "", more: str = "") -> Iterator[Api]:
    """Run `reputable serve` whose TXT lookup URLs point at its own HTTP port; yield its Api."""
    dns_port, http_port = free_port(), free_port()
    extra = more
    if relay:
        extra += f'[mail]\nrelay = "{relay}"\nfrom = "rbl@reputable.test"\nsite = "http://127.0.0.1:{http_port}"\n'
    if web:
        extra += f"[web]\n{web}\n"
    config = write_config(
        directory, dns_port=dns_port, http_port=http_port, extra=extra, interval='"1s"'
    )
    text = config.read_text(encoding="utf-8").replace(
        "http://127.0.0.1:8080/lookup/$", f"http://127.0.0.1:{http_port}/lookup/$"
    )
    config.write_text(text, encoding="utf-8")
    with RunningServer(config) as server:
        wait_for(lambda: "http_ready" in server.log(), 90)  # at once unless the machine is loaded
        base = f"http://127.0.0.1:{http_port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            yield Api(config, dns_port, base, server, client)


def post_evidence(api: Api, token: str, subject: str, count: int, **extra: Any) -> None:
    """Post *count* spam-trap hits about *subject* (observed now)."""
    now = time.time()  # ids unique per call
    lines = [
        json.dumps(
            {
                "subject": subject,
                "cause": "spam",
                "source": "traps",
                "weight": 2.0,
                "id": f"{subject}-{n}-{now}",
                "detail": {"trap": f"trap{n}@example.net"},
                **extra,
            }
        )
        for n in range(count)
    ]
    reply = api.client.post(
        "/api/v1/evidence",
        content="\n".join(lines) + "\n",
        headers={**NDJSON, "Authorization": f"Bearer {token}"},
    )
    assert reply.status_code == 200 and reply.json()["stored"] == count, reply.text


def csrf_of(html: str) -> str:
    """Return the CSRF token in the first form of *html*."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)
