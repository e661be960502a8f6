"""Fixtures of the checker tests: a loopback DNS world with fake public lists and mail records."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.checker.dnsfixture import DnsFixture, ZoneData

ZONE_FILE = Path(__file__).parent / "data" / "zones.toml"
LISTED_IP = "198.51.100.25"
GENERIC_IP = "198.51.100.26"
NO_PTR_IP = "198.51.100.27"
SILENT_IP = "203.0.113.9"  # its reverse zone never answers
SILENT_REVERSE = "113.0.203.in-addr.arpa"
V6 = "2001:db8::25"
V6_NIBBLES = "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"


#: The signing key of example.net's DKIM selector "default" (sample messages are signed with it).
DKIM_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)
DKIM_PRIVATE_PEM = DKIM_KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption(),
)


def dkim_key() -> str:
    """Return the base64 DER public key of DKIM_KEY, as published in a DKIM record."""
    key = DKIM_KEY
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def world_data() -> ZoneData:
    """Return the records of the fake internet the checker tests run against."""
    records: dict[tuple[str, str], list[str]] = {
        ("2.0.0.127.listed.test", "A"): ["127.0.0.2"],
        ("25.100.51.198.listed.test", "A"): ["127.0.0.2", "127.0.0.4"],
        ("25.100.51.198.listed.test", "TXT"): [
            '"Listed for spam, see https://listed.test/q/198.51.100.25"'
        ],
        (f"{V6_NIBBLES}.listed.test", "A"): ["127.0.0.2"],
        ("2.0.0.127.clean.test", "A"): ["127.0.0.2"],
        ("2.0.0.127.v4only.test", "A"): ["127.0.0.2"],
        ("2.0.0.127.quota.test", "A"): ["127.0.0.2"],
        ("25.100.51.198.odd.test", "A"): ["10.0.0.1"],
        ("25.100.51.198.allow.test", "A"): ["127.0.15.3"],
        ("spam.example.net.dbl.test", "A"): ["127.0.1.2"],
        ("spam.example.net.dbl.test", "TXT"): ['"spam domain"'],
        ("test.dbl.test", "A"): ["127.0.1.2"],
        ("spam.example.net.bits.test", "A"): ["127.0.0.72"],
        ("blocked.example.bits.test", "A"): ["127.0.0.1"],
        ("25.100.51.198.in-addr.arpa", "PTR"): ["mail.example.net."],
        ("26.100.51.198.in-addr.arpa", "PTR"): ["26-100-51-198.dyn.isp.example."],
        ("mail.example.net", "A"): [LISTED_IP],
        ("example.net", "MX"): ["10 mail.example.net."],
        ("example.net", "TXT"): ['"v=spf1 ip4:198.51.100.25 -all"'],
        ("_dmarc.example.net", "TXT"): ['"v=DMARC1; p=reject; rua=mailto:dmarc@example.net"'],
        ("default._domainkey.example.net", "TXT"): [f'"v=DKIM1; k=rsa; p={dkim_key()}"'],
        ("bad.example", "TXT"): ['"v=spf1 +all"'],
        ("bad.example", "A"): ["192.0.2.10"],
        ("helo27.example.net", "A"): [NO_PTR_IP],
        ("none.example", "TXT"): ['"v=spf1 ip4:192.0.2.10 -all"'],
        ("_dmarc.none.example", "TXT"): ['"v=DMARC1; p=none; rua=mailto:dmarc@none.example"'],
        ("_mta-sts.example.net", "TXT"): ['"v=STSv1; id=20261205"'],
        ("_smtp._tls.example.net", "TXT"): ['"v=TLSRPTv1; rua=mailto:tls@example.net"'],
        ("default._bimi.example.net", "TXT"): ['"v=BIMI1; l=https://example.net/logo.svg; a="'],
        ("policy.example", "MX"): ["10 mx.policy.example."],
        ("_mta-sts.policy.example", "TXT"): ['"v=STSv1; id=1"'],
        ("_smtp._tls.policy.example", "TXT"): ['"v=TLSRPTv1; rua=ftp://policy.example/"'],
        ("default._bimi.policy.example", "TXT"): ['"v=BIMI1; l=http://policy.example/logo.png"'],
        ("two.example", "TXT"): ['"v=spf1 -all"', '"v=spf1 ip4:192.0.2.1 -all"'],
    }
    return ZoneData(
        records=records,
        wildcards={
            ("quota.test", "A"): ["127.255.255.254"],
            ("world.test", "A"): ["127.0.0.2"],
            ("expire.test", "A"): ["127.0.0.2"],
        },
        zones=(
            "listed.test",
            "clean.test",
            "quota.test",
            "odd.test",
            "v4only.test",
            "allow.test",
            "dbl.test",
            "bits.test",
            "world.test",
            "expire.test",
            "gone.test",
            "in-addr.arpa",
            "ip6.arpa",
            "example.net",
            "example",
            "isp.example",
        ),
        refuse=("rcode.test",),
        silent=("slow.test", SILENT_REVERSE),
        validated=("example.net",),
    )


@pytest.fixture(scope="session")
def world() -> Iterator[DnsFixture]:
    """Serve the fake internet on 127.0.0.1 for the whole session."""
    server = DnsFixture(world_data()).start()
    yield server
    server.stop()


@pytest.fixture
def zone_file() -> Path:
    """Return the catalogue of fake public lists served by *world*."""
    return ZONE_FILE
