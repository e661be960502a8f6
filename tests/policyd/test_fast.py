"""The memoised hot path answers exactly what ``decide`` over ``parse_request`` answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.builder import publish_now
from reputable.config import Config, load_config
from reputable.core.address import Subject, parse_subject
from reputable.core.cause import Cause
from reputable.evidence.detectors.mail_config import mail_params
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.policyd.decide import decide
from reputable.policyd.fast import Decider, parse_clean
from reputable.policyd.protocol import parse_request, response
from reputable.policyd.server import PolicyService
from reputable.policyd.settings import PolicySettings, parse_policy
from reputable.publication.lookup import Lookup, Zones, lookup
from reputable.publication.snapshot.view import Snapshot
from reputable.store.sqlite import SQLiteStore
from reputable.testing import free_port, write_config

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LISTED = [
    ("192.0.2.66", Cause.SPAM),
    ("192.0.2.66", Cause.RDNS),  # two causes, two codes on one address
    ("192.0.2.88", Cause.RDNS),
    ("192.0.2.0/28", Cause.COMPROMISED),  # covers .1-.15 and overlaps nothing above
    ("198.51.100.0/24", Cause.COMPROMISED),
    ("198.51.100.7", Cause.SPAM),  # inside the /24: both answer
    ("spammy.example", Cause.SPAM),
    ("mail.spammy.example", Cause.RDNS),
    ("bad.example.org", Cause.MALWARE_HOST),
    ("2001:db8::66", Cause.OPEN_PROXY),
    ("2001:db8:1::/48", Cause.SPAM),
]
ALLOWED = ("198.51.100.10", "good.spammy.example", "192.0.2.5")
ADDRESSES = [
    "192.0.2.66", "192.0.2.88", "192.0.2.3", "192.0.2.5", "192.0.2.200", "198.51.100.7",
    "198.51.100.10", "198.51.100.99", "203.0.113.5", "2001:db8::66", "2001:db8:1::9",
    "::ffff:192.0.2.66", "::ffff:198.51.100.10", "2001:db8::1", "01.2.3.4", "192.0.2.066",
    "192.0.2.0/24", "1.2.3", "unknown", "", " 192.0.2.66", "192.0.2.66 ", "[192.0.2.66]",
]  # fmt: skip
NAMES = [
    "spammy.example", "mail.spammy.example", "good.spammy.example", "x.good.spammy.example",
    "a.b.spammy.example", "bad.example.org", "BAD.Example.ORG.", "example.org", "unknown",
    "[192.0.2.66]", "192.0.2.66", "mx", "", " spammy.example ", "xn--fa-hia.example",
    "fa\u00df.spammy.example", "a..b.example", "-bad-.example", "::1", "\u00e9.example",
]  # fmt: skip


def _build(folder: Path) -> tuple[Config, Snapshot]:
    folder.mkdir(parents=True, exist_ok=True)
    path = write_config(folder, dns_port=free_port(), extra='[traps]\naddresses = ["t@x.test"]\n')
    config = load_config(path)
    store = SQLiteStore(config.store_dsn.removeprefix("sqlite:///"))
    listings = tuple(
        Listing(subject=parse_subject(s), cause=c, reason=f"r {s}", source="t", listed_at=T0)
        for s, c in LISTED
    )
    allows = tuple(
        AllowEntry(subject=parse_subject(s), note="ok", source="t", created_at=T0) for s in ALLOWED
    )
    store.apply(Batch(listings=listings, allows=allows), actor="t", action="list")
    store.close()
    publish_now(config)
    return config, Snapshot(config.snapshot_path)


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Snapshot]:
    """A snapshot with overlapping listings, several causes per address and allowlists."""
    return _build(tmp_path_factory.mktemp("fast"))


SETTINGS = [
    parse_policy({"listen": "127.0.0.1:0"}),
    parse_policy({"listen": "127.0.0.1:0", "soft": True}),
    parse_policy(
        {
            "listen": "127.0.0.1:0",
            "actions": {"spam": "PREPEND", "rdns": "DUNNO", "malware_host": "DEFER_IF_PERMIT"},
        }
    ),
]


def _block(attrs: list[tuple[str, str]]) -> bytes:
    return "\n".join(f"{k}={v}" for k, v in attrs).encode()


def _expected(block: bytes, snapshot: Snapshot, policy: PolicySettings, zones: Zones) -> bytes:
    """The specification: ``parse_request``, then ``decide`` with the shared lookup."""
    request = parse_request(block)
    if request.error is not None:
        return response("DUNNO")

    def look(subject: Subject) -> Lookup:
        return lookup(snapshot, subject, zones)

    return response(decide(request, look, policy, zones).action)


values = st.one_of(st.sampled_from(ADDRESSES + NAMES), st.text(max_size=20))
senders = st.one_of(
    st.builds(lambda local, name: f"{local}@{name}", st.sampled_from(["a", "", "x@y"]), st.sampled_from(NAMES)),
    st.sampled_from(["", "<>", "nobody"]),
)  # fmt: skip


@given(
    client=st.sampled_from(ADDRESSES) | values,
    client_name=st.sampled_from(NAMES) | values,
    helo=st.sampled_from(NAMES) | values,
    sender=senders,
    repeat=st.booleans(),
    which=st.integers(0, len(SETTINGS) - 1),
)
@settings(max_examples=1500, deadline=None)
def test_fast_path_answers_as_decide(
    rich: tuple[Config, Snapshot],
    client: str,
    client_name: str,
    helo: str,
    sender: str,
    repeat: bool,
    which: int,
) -> None:
    """Random requests over overlapping listings and allowlists: same wire answer, byte for byte."""
    config, snapshot = rich
    zones = Zones.of(config)
    policy = SETTINGS[which]
    attrs = [
        ("request", "smtpd_access_policy"),
        ("protocol_state", "RCPT"),
        ("client_address", "203.0.113.9" if repeat else client),
        ("client_name", client_name),
        ("helo_name", helo),
        ("sender", sender),
        ("recipient", "bob@example.com"),
    ]
    if repeat:
        attrs.append(("client_address", client))  # the last value of a name wins
    block = _block(attrs)
    svc = PolicyService(policy, zones, lambda: snapshot, mail_params(config.extra).traps)
    assert svc.answer(block) == _expected(block, snapshot, policy, zones)
    assert svc.answer(block) == _expected(block, snapshot, policy, zones)  # from the memos


def test_the_fast_path_is_taken_for_postfix_requests(rich: tuple[Config, Snapshot]) -> None:
    """Well-formed requests are parsed by the fast parser; anything unusual is left to the slow one."""
    block = _block([("request", "smtpd_access_policy"), ("client_address", "192.0.2.66")])
    assert parse_clean(block) == {"request": "smtpd_access_policy", "client_address": "192.0.2.66"}
    assert parse_clean(block + b"\na=b=c") == {
        "request": "smtpd_access_policy", "client_address": "192.0.2.66", "a": "b=c",
    }  # fmt: skip
    for unusual in (block + b"\n", block + b"\njunk", block + b"\n=x", block.replace(b"\n", b"\r\n"),
                    b"request=other\nclient_address=1.2.3.4"):  # fmt: skip
        assert parse_clean(unusual) is None
    config, snapshot = rich
    decider = Decider(SETTINGS[0], Zones.of(config))
    verb, action = decider.decide(snapshot, {"client_address": "192.0.2.66"})
    assert verb == "REJECT" and action.startswith("REJECT 5.7.1 Client host 192.0.2.66")
    assert decider.values  # memoised by value ids


def test_memos_never_answer_from_an_older_snapshot(tmp_path: Path) -> None:
    """When the snapshot changes, a memoised listing is looked up again."""
    config, first = _build(tmp_path / "a")
    second_config, second = _build(tmp_path / "b")
    store = SQLiteStore(second_config.store_dsn.removeprefix("sqlite:///"))
    store.apply(
        Batch(
            allows=(
                AllowEntry(
                    subject=parse_subject("192.0.2.66"), note="now ok", source="t", created_at=T0
                ),
            )
        ),
        actor="t",
        action="allow",
    )
    store.close()
    publish_now(second_config)
    second = Snapshot(second_config.snapshot_path)
    current: list[Snapshot] = [first]
    source: Callable[[], Snapshot] = lambda: current[0]  # noqa: E731
    svc = PolicyService(SETTINGS[0], Zones.of(config), source, mail_params(config.extra).traps)
    block = _block([("request", "smtpd_access_policy"), ("client_address", "192.0.2.66"),
                    ("helo_name", "spammy.example")])  # fmt: skip
    assert svc.answer(block).startswith(b"action=REJECT")
    current[0] = second
    assert svc.answer(block) == b"action=DUNNO\n\n"  # allowlisted in the new snapshot


class _Transport:
    def __init__(self) -> None:
        self.out = bytearray()

    def write(self, data: bytes) -> None:
        self.out += data

    def close(self) -> None:
        pass


def test_crlf_split_between_reads_still_ends_the_request(rich: tuple[Config, Snapshot]) -> None:
    """A CR at the end of one read and its LF in the next (found by bench/fuzz.py policy)."""
    config, snapshot = rich
    svc = PolicyService(SETTINGS[0], Zones.of(config), lambda: snapshot, mail_params({}).traps)
    wire = b"request=smtpd_access_policy\r\nclient_address=192.0.2.66\r\n\r\n"

    async def feed() -> bytes:
        for cut in range(1, len(wire)):
            connection = svc.connection()
            transport = _Transport()
            connection.connection_made(transport)  # type: ignore[arg-type]  # a stand-in
            connection.data_received(wire[:cut])
            connection.data_received(wire[cut:])
            connection.connection_lost(None)
            assert transport.out.startswith(b"action=REJECT 5.7.1 Client host 192.0.2.66"), cut
            assert transport.out.count(b"\n\n") == 1, cut
        return b""

    import asyncio

    asyncio.run(feed())


def test_a_lone_cr_before_crlf_is_not_normalised_twice(rich: tuple[Config, Snapshot]) -> None:
    """CR CR LF is a CR then a line end, however the reads split it (bench/fuzz.py policy)."""
    config, snapshot = rich
    svc = PolicyService(SETTINGS[0], Zones.of(config), lambda: snapshot, mail_params({}).traps)
    wire = b"request=smtpd_access_policy\r\nclient_address=192.0.2.66\r\n\r\r\nx=y\r\n\r\n"

    async def feed(cut: int) -> bytes:
        connection = svc.connection()
        transport = _Transport()
        connection.connection_made(transport)  # type: ignore[arg-type]  # a stand-in
        connection.data_received(wire[:cut])
        connection.data_received(wire[cut:])
        connection.connection_lost(None)
        return bytes(transport.out)

    import asyncio

    whole = asyncio.run(feed(len(wire)))
    assert whole.count(b"\n\n") == 1  # "\r" alone on a line: one malformed request
    for cut in range(len(wire)):
        assert asyncio.run(feed(cut)) == whole, cut
