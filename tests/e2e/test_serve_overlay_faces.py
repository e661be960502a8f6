"""Every face of a running `serve` agrees with DNS within 2 s of a one-entry change.

A `list add` / `list remove` of one address goes into the snapshot's overlay at once and the
full rebuild waits up to 60 s (app.py). The API lookup, the web lookup page and the Postfix
policy service must answer the change from the overlay as DNS does, well before that rebuild:
the test checks that the base snapshot file was not replaced meanwhile, so the agreement can
only come from the overlay.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import pytest

from reputable.config import load_config
from reputable.publication.snapshot.overlay import overlay_path
from reputable.testing import RunningServer, cli, free_port, write_config
from tests.conftest import use_store

ZONE = "bl.reputable.test"
ADDED = "192.0.2.77"
REMOVED = "192.0.2.8"
SEEDED = "198.51.100.7"  # listed before serve and left alone: the base answers it
AGREE_WITHIN = 2.0


def _dns(port: int, address: str) -> tuple[set[str], set[str]]:
    """Return the A codes and TXT strings DNS answers for *address* in the block zone."""
    name = ".".join(reversed(address.split("."))) + "." + ZONE
    found: list[set[str]] = []
    for rdtype in ("A", "TXT"):
        reply = dns.query.udp(
            dns.message.make_query(name, rdtype), "127.0.0.1", timeout=3, port=port
        )
        assert reply.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
        found.append(
            {
                r.address if rdtype == "A" else b"".join(r.strings).decode()
                for rrset in reply.answer
                for r in rrset
            }
        )
    return found[0], found[1]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return str(reply.read().decode("utf-8"))


def _api(http: int, address: str) -> tuple[set[str], set[str]]:
    """Return the codes and TXT the API lookup (GET and a one-subject batch POST) answers."""
    doc: dict[str, Any] = json.loads(_get(f"http://127.0.0.1:{http}/api/v1/lookup/{address}"))
    request = urllib.request.Request(
        f"http://127.0.0.1:{http}/api/v1/lookup",
        data=json.dumps({"subjects": [address]}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        (batch,) = json.loads(reply.read())["results"]
    assert batch["listings"] == doc["listings"], (batch, doc)
    assert doc["listed"] == bool(doc["listings"])
    return {a["code"] for a in doc["listings"]}, {a["txt"] for a in doc["listings"]}


def _page(http: int, address: str) -> bool:
    """Return whether the web lookup page says *address* is listed."""
    html = _get(f"http://127.0.0.1:{http}/lookup/{address}")
    if "id=verdict>listed<" in html:
        return True
    assert "id=verdict>not listed<" in html, html[:2000]
    return False


def _policy(port: int, address: str) -> str:
    """Return the action the policy service answers for a client at *address*."""
    request = (
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
        f"client_address={address}\nclient_name=unknown\nhelo_name=mx.test.invalid\n"
        "sender=a@test.invalid\nrecipient=b@test.invalid\n\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request.encode())
        reply = b""
        while not reply.endswith(b"\n\n"):
            chunk = conn.recv(4096)
            assert chunk, f"policy service closed without an answer: {reply!r}"
            reply += chunk
    line = reply.decode().strip()
    assert line.startswith("action="), line
    return line.removeprefix("action=")


def _faces(ports: tuple[int, int, int], address: str) -> dict[str, object]:
    """Return what each face answers for *address*, in terms comparable with DNS."""
    dns_port, http, policy = ports
    codes, txt = _dns(dns_port, address)
    api_codes, api_txt = _api(http, address)
    action = _policy(policy, address)
    return {
        "dns": (codes, txt),
        "api": (api_codes, api_txt),
        "page": _page(http, address),
        "policy": not action.startswith("DUNNO"),
    }


def _agree(faces: dict[str, object]) -> bool:
    codes, _ = faces["dns"]  # type: ignore[misc]
    return faces["api"] == faces["dns"] and faces["page"] == faces["policy"] == bool(codes)


def _ready(ports: tuple[int, int, int], snapshot: Path) -> bool:
    """True once the snapshot is built and HTTP and the policy service (started after
    ``serve_ready``) accept connections and agree with DNS on the seeded listing."""
    try:
        return snapshot.exists() and _agree(_faces(ports, REMOVED))
    except OSError:  # not listening yet (urllib's URLError is an OSError too)
        return False


def _identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


@pytest.mark.serial  # a wall-clock limit: no other worker's test runs meanwhile
def test_faces_agree_with_dns_within_two_seconds(tmp_path: Path, store_dsn: str) -> None:
    """After one `list add` and one `list remove`, API, page and policy say what DNS says."""
    dns_port, http, policy = ports = (free_port(), free_port(), free_port())
    config = use_store(
        write_config(
            tmp_path,
            dns_port=dns_port,
            http_port=http,
            extra=f'[policy_service]\nlisten = "127.0.0.1:{policy}"\n',
        ),
        store_dsn,
    )
    cli(config, "list", "add", SEEDED, "--cause", "spam", "--reason", "trap hits on $")
    cli(config, "list", "add", REMOVED, "--cause", "open_proxy")
    with RunningServer(config) as running:
        snapshot = load_config(config).snapshot_path
        deadline = time.monotonic() + 60
        while not _ready(ports, snapshot):
            assert time.monotonic() < deadline, running.log()
            time.sleep(0.2)
        before = {a: _faces(ports, a) for a in (ADDED, REMOVED, SEEDED)}
        assert before[ADDED]["dns"] == (set(), set()) and not before[ADDED]["policy"]
        assert before[REMOVED]["dns"][0], before  # type: ignore[index]
        assert before[REMOVED]["page"] and before[REMOVED]["policy"]
        assert before[SEEDED]["dns"][0] == {"127.0.0.2"}, before  # type: ignore[index]
        assert all(_agree(f) for f in before.values()), before
        base = _identity(snapshot)

        for command, address, listed in (
            (("list", "add", ADDED, "--cause", "spam", "--reason", "fresh trap hit"), ADDED, True),
            (("list", "remove", REMOVED), REMOVED, False),
        ):
            cli(config, *command)
            changed = time.monotonic()
            while True:  # DNS first: the overlay is written and the workers took it
                codes, _ = _dns(dns_port, address)
                if bool(codes) == listed:
                    break
                assert time.monotonic() - changed < 10, running.log()
                time.sleep(0.05)
            seen = time.monotonic()
            while not _agree(faces := _faces(ports, address)):
                assert time.monotonic() - seen < AGREE_WITHIN, (address, faces, running.log())
                time.sleep(0.05)
            assert faces["page"] is listed, faces
            assert _agree(_faces(ports, SEEDED)), "an unchanged address still answers the same"
        assert overlay_path(snapshot).exists()
        assert _identity(snapshot) == base, "the base was rebuilt: the overlay was not tested"
        assert "overlay_written" in running.log()
        after = _faces(ports, ADDED)
        assert after["dns"] == (
            {"127.0.0.2"},
            {f"fresh trap hit http://127.0.0.1:8080/lookup/{ADDED}"},
        )
