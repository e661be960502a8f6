"""The policy service: protocol, decisions per cause, trap evidence, bad input, real sockets."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.config import DEFAULT_TOML, Config, parse_config
from reputable.core.address import Subject
from reputable.core.cause import Cause
from reputable.core.errors import ConfigError, SnapshotError
from reputable.evidence.detectors.mail_config import mail_params
from reputable.evidence.model import Evidence
from reputable.policyd.decide import decide
from reputable.policyd.protocol import parse_request, response, split_requests
from reputable.policyd.server import PolicyService
from reputable.policyd.settings import PolicySettings, parse_policy
from reputable.publication.lookup import Lookup, Zones, lookup
from reputable.publication.snapshot.view import Snapshot
from tests.policyd.conftest import build


def request(**attrs: str) -> bytes:
    """Return a policy request block (RCPT stage) with *attrs* over sensible defaults."""
    base = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": "203.0.113.5",
        "client_name": "unknown",
        "helo_name": "mx.example.org",
        "sender": "alice@example.org",
        "recipient": "bob@example.com",
        "queue_id": "",
    }
    base.update(attrs)
    return "\n".join(f"{k}={v}" for k, v in base.items()).encode()


def service(built: tuple[Config, Snapshot], **kw: object) -> PolicyService:
    """Return a policy service over the built snapshot (no evidence queue unless given)."""
    config, snapshot = built
    policy = parse_policy({"listen": "127.0.0.1:0", **kw})  # type: ignore[dict-item]  # test values
    return PolicyService(
        policy, Zones.of(config), lambda: snapshot, mail_params(config.extra).traps
    )


def answer(svc: PolicyService, **attrs: str) -> str:
    """Return the action text the service answers for one request."""
    wire = svc.answer(request(**attrs)).decode()
    assert wire.startswith("action=") and wire.endswith("\n\n")
    return wire.removeprefix("action=").removesuffix("\n\n")


def test_protocol_round_trip_and_splitting() -> None:
    """Requests split at empty lines; the last value of a repeated name wins; answers end blank."""
    buffer = bytearray(b"request=smtpd_access_policy\na=1\na=2\n\nrequest=smtpd_access_policy\n")
    blocks = split_requests(buffer)
    assert len(blocks) == 1
    assert parse_request(blocks[0]).attrs["a"] == "2"
    assert buffer == b"request=smtpd_access_policy\n"
    assert response("REJECT 5.7.1 two\nlines") == b"action=REJECT 5.7.1 two lines\n\n"


def test_malformed_requests_are_named() -> None:
    """A line without '=' or another request kind is malformed, with the reason."""
    assert "not name=value" in (parse_request(b"request=smtpd_access_policy\njunk").error or "")
    assert "only smtpd_access_policy" in (parse_request(b"request=other").error or "")
    assert parse_request(request()).error is None


def test_listed_client_is_rejected_naming_zone_and_url(built: tuple[Config, Snapshot]) -> None:
    """A spam-listed client gets REJECT 5.7.1 with the zone and its lookup URL."""
    text = answer(service(built), client_address="192.0.2.66")
    assert text == (
        "REJECT 5.7.1 Client host 192.0.2.66 is listed in bl.reputable.test (spam);"
        " see http://127.0.0.1:8080/lookup/192.0.2.66"
    )


def test_actions_per_cause(built: tuple[Config, Snapshot]) -> None:
    """rdns defers by default; a network listing rejects; unlisted gets DUNNO."""
    svc = service(built)
    assert answer(svc, client_address="192.0.2.88").startswith("DEFER_IF_PERMIT 4.7.1 Client host")
    assert "(compromised)" in answer(svc, client_address="198.51.100.77")
    assert answer(svc, client_address="2001:db8::66").startswith("REJECT 5.7.1")
    assert answer(svc) == "DUNNO"
    custom = service(built, actions={"spam": "DEFER_IF_PERMIT", "rdns": "DUNNO"})
    assert answer(custom, client_address="192.0.2.66").startswith("DEFER_IF_PERMIT")
    assert answer(custom, client_address="192.0.2.88") == "DUNNO"


def test_domains_are_checked_and_allowlist_comes_first(built: tuple[Config, Snapshot]) -> None:
    """Sender domain, HELO and client name hit the domain zone; allowlisted ones never do."""
    svc = service(built)
    assert "Sender domain spammy.example is listed in dbl.reputable.test" in answer(
        svc, sender="x@spammy.example"
    )
    assert "HELO name mail.spammy.example" in answer(svc, helo_name="mail.spammy.example")
    assert "Client name a.spammy.example" in answer(svc, client_name="a.spammy.example")
    assert answer(svc, sender="x@good.spammy.example") == "DUNNO"  # allowlisted name
    # an allowlisted client address clears everything, even a listed sender domain
    assert answer(svc, client_address="198.51.100.10", sender="x@spammy.example") == "DUNNO"
    assert answer(svc, helo_name="[192.0.2.66]", sender="") == "DUNNO"  # literals skipped
    assert answer(svc, client_address="198.51.100.0/24") == "DUNNO"  # never a network lookup


def test_soft_mode_prepends_a_header(built: tuple[Config, Snapshot]) -> None:
    """soft = true turns every verdict into a PREPEND of the X-Reputable header."""
    text = answer(service(built, soft=True), client_address="192.0.2.66")
    assert text == (
        "PREPEND X-Reputable: listed=bl.reputable.test cause=spam subject=192.0.2.66"
        " role=client_address"
    )


def test_decision_uses_the_shared_lookup(built: tuple[Config, Snapshot]) -> None:
    """decide asks publication.lookup (the API's and pages' module) once per subject."""
    config, snapshot = built
    asked: list[Subject] = []
    zones = Zones.of(config)

    def look(subject: Subject) -> Lookup:
        asked.append(subject)
        return lookup(snapshot, subject, zones)

    parsed = parse_request(request(client_address="192.0.2.66", helo_name="mx.example.org"))
    decision = decide(parsed, look, PolicySettings(), zones)
    assert [str(s) for s in asked] == ["192.0.2.66/32", "mx.example.org", "example.org"]
    assert decision.hits[0].answer.cause is Cause.SPAM


def test_trap_recipient_queues_spam_evidence(built: tuple[Config, Snapshot]) -> None:
    """RCPT to a trap address queues spam evidence on the client with sender and HELO."""
    svc = service(built)
    queue: asyncio.Queue[Evidence] = asyncio.Queue()
    svc.evidence = queue
    answer(svc, recipient="Trap@Example.NET", client_address="203.0.113.9", sender="s@x.example")
    answer(svc, recipient="trap@example.net", protocol_state="DATA")  # once per RCPT only
    assert queue.qsize() == 1
    item = queue.get_nowait()
    assert (str(item.subject), item.cause, item.weight) == ("203.0.113.9", Cause.SPAM, 3.0)
    assert item.detail["sender"] == "s@x.example"
    assert item.detail["helo"] == "mx.example.org"
    assert svc.counts["traps"] == 1


def test_bad_settings_are_refused() -> None:
    """Unknown verbs, causes and keys are refused naming the key."""
    with pytest.raises(ConfigError, match="use REJECT, DEFER_IF_PERMIT, PREPEND, DUNNO"):
        parse_policy({"actions": {"spam": "DISCARD"}})
    with pytest.raises(ConfigError, match="unknown cause"):
        parse_policy({"actions": {"spamm": "REJECT"}})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_policy({"listne": "x"})
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_policy({"listen": "10040"})


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_any_bytes_get_an_answer(data: bytes) -> None:
    """Whatever arrives, the answer is one action line (never an exception)."""
    wire = DUMMY.answer(data)
    assert wire.startswith(b"action=") and wire.endswith(b"\n\n")


class _NoSnapshot:
    """A snapshot source before the first build."""

    def __call__(self) -> Snapshot:
        raise SnapshotError("no snapshot in this test")


DUMMY = PolicyService(
    PolicySettings(), Zones.of(parse_config(DEFAULT_TOML)), _NoSnapshot(), mail_params({}).traps
)


@pytest.fixture(scope="module")
def module_built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Snapshot]:
    """One built snapshot shared by the property below (Hypothesis reruns the function)."""
    return build(tmp_path_factory.mktemp("policy"))


names = st.text(alphabet=st.sampled_from("ab.-_[]:/@0123456789xn\u00e9 "), max_size=40)


@given(client=names, helo=names, sender=names, client_name=names)
@settings(max_examples=300, deadline=None)
def test_any_attribute_values_get_an_answer(
    module_built: tuple[Config, Snapshot], client: str, helo: str, sender: str, client_name: str
) -> None:
    """Junk in every looked-up attribute still gets one action and no error count."""
    svc = service(module_built)
    text = answer(
        svc, client_address=client, helo_name=helo, sender=sender, client_name=client_name
    )
    assert text.split(" ", 1)[0] in ("DUNNO", "REJECT", "DEFER_IF_PERMIT", "PREPEND")
    assert svc.counts["errors"] == 0


def test_missing_snapshot_answers_dunno_and_counts() -> None:
    """Without a snapshot the service lets mail through (DUNNO) and counts an error."""
    before = DUMMY.counts["errors"]
    assert DUMMY.answer(request(client_address="192.0.2.66")) == b"action=DUNNO\n\n"
    assert DUMMY.counts["errors"] == before + 1


async def _converse(port: int, blocks: list[bytes]) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    for block in blocks:
        writer.write(block + b"\n\n")
        await writer.drain()
        answers.append(await reader.readuntil(b"\n\n"))
    writer.close()
    await writer.wait_closed()
    return answers


def test_socket_many_requests_many_connections(built: tuple[Config, Snapshot]) -> None:
    """Over TCP: requests in sequence per connection, connections in parallel, junk answered."""
    svc = service(built)

    async def run() -> list[list[bytes]]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(svc.connection, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            blocks = [
                request(client_address="192.0.2.66"),
                b"this is not a policy request",
                request(),
            ]
            return await asyncio.gather(*(_converse(port, blocks) for _ in range(20)))

    results = asyncio.run(run())
    for answers in results:
        assert answers[0].startswith(b"action=REJECT 5.7.1 Client host 192.0.2.66")
        assert answers[1] == b"action=DUNNO\n\n"  # malformed: answered, connection kept
        assert answers[2] == b"action=DUNNO\n\n"
    assert svc.counts["requests"] == 60
    assert svc.counts["errors"] == 20
    assert "reputable_policy_errors_total 20" in svc.metrics()


def test_socket_pipelined_burst_and_split_requests(built: tuple[Config, Snapshot]) -> None:
    """Over TCP, reads through the shared buffer: a burst larger than one read (READ_SIZE) of
    pipelined requests on several connections at once, and a request sent a byte at a time,
    are each answered once, in order, per connection."""
    from reputable.policyd.server import READ_SIZE

    svc = service(built)
    listed = request(client_address="192.0.2.66") + b"\n\n"
    clean = request(client_address="198.51.100.200") + b"\n\n"
    burst = (listed + clean) * (READ_SIZE // len(listed + clean) + 50)
    count = burst.count(b"\n\n")

    async def pipelined(port: int) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(burst)
        await writer.drain()
        answers = [await reader.readuntil(b"\n\n") for _ in range(count)]
        writer.close()
        await writer.wait_closed()
        return answers

    async def trickled(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(len(listed)):
            writer.write(listed[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0)
        answer = await reader.readuntil(b"\n\n")
        writer.close()
        await writer.wait_closed()
        return answer

    async def run() -> tuple[list[list[bytes]], bytes]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(svc.connection, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            bursts = asyncio.gather(*(pipelined(port) for _ in range(4)))
            return await bursts, await trickled(port)

    bursts, single = asyncio.run(run())
    other = service(built).answer(request(client_address="198.51.100.200"))
    assert len(burst) > READ_SIZE
    for answers in bursts:
        assert len(answers) == count
        assert all(
            a.startswith(b"action=REJECT 5.7.1 Client host 192.0.2.66") for a in answers[::2]
        )
        assert all(a == other for a in answers[1::2])
    assert single.startswith(b"action=REJECT 5.7.1 Client host 192.0.2.66")
    assert svc.counts["requests"] == 4 * count + 1 and svc.counts["errors"] == 0
