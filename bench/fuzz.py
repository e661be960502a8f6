"""Fuzz every parser that reads outside input; print inputs/s and every crash with a reproducer.

Run: python bench/fuzz.py [TARGET ...] [--runs N] [--engine atheris|mutate] [--seed S]
     python bench/fuzz.py TARGET --reproduce FILE      (re-run one saved input)
     python bench/fuzz.py --list

Targets (``--list``): the DNS wire path (the compiled loop and the Python one, differential:
where C answers, its bytes must equal Python's; every reply within the size limits; the RRL
limiters agree), each mail- and network-log parser, ARF reports, each feed format, rbldnsd
data files, evidence JSON lines, the hosting-map CSV, the Postfix policy protocol (bytes in
over a connection: one action line per complete request, and the memoised fast path's answer
equal to decide() over parse_request()) and the HTTP API request bodies (evidence intake as
JSON and JSON lines, the batch lookup, urls:find, delist: the real ASGI app called in-process,
never a 5xx, every 4xx a JSON error document with a code and a message; the status codes are
counted and printed).

A crash is any exception other than reputable's own ``ReputableError`` (the clean "this input
is bad because ..." answer), or a failed differential check. Each is printed with its traceback
and saved as ``fuzz-crash-TARGET-HASH.bin`` (the reproducer) in the current folder.

Engines: ``atheris`` (coverage-guided libFuzzer, pip install atheris; one target per process,
so several targets run one after another in child processes) and ``mutate``, a seeded
dependency-free mutator over the target's seed corpus (byte flips, inserts, splices, cuts,
random blobs) used by the test suite's short budget. Both run in-process on loopback-free,
network-free pure functions; nothing here opens a socket.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "samples"
FEED_SAMPLES = ROOT / "tests" / "evidence" / "feed_samples"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)

Check = Callable[[bytes], None]


class Mismatch(AssertionError):
    """A differential or limit check failed: a bug even though nothing raised."""


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


# -- targets ----------------------------------------------------------------------------------
def _dns() -> tuple[Check, list[bytes]]:
    import dns.message

    from reputable.config import DEFAULT_TOML, parse_config
    from reputable.core.address import parse_subject
    from reputable.core.cause import Cause
    from reputable.listings.model import AllowEntry, Batch, Listing
    from reputable.publication.dnsbl import fastpath, rrl
    from reputable.publication.dnsbl.wire import Responder
    from reputable.publication.dnsbl.worker import zone_specs
    from reputable.publication.snapshot.publish import publish
    from reputable.publication.snapshot.view import Snapshot
    from reputable.testing import MemoryStore

    folder = Path(tempfile.mkdtemp(prefix="reputable-fuzz-"))
    config = parse_config(DEFAULT_TOML, folder / "reputable.toml")
    store = MemoryStore()
    causes = list(Cause)[:9]
    listings = [
        Listing(subject=parse_subject(s), cause=c, reason=r, source="f", listed_at=NOW)
        for s, c, r in [
            ("192.0.2.7", Cause.SPAM, "trap $ hits $$"),
            ("192.0.2.0/24", Cause.COMPROMISED, "C" * 1000),
            ("198.51.100.0/25", Cause.HARVEST, "$" * 1000),
            ("2001:db8::/48", Cause.MANUAL, "v6"),
            ("evil.example", Cause.MALWARE_HOST, "kit"),
        ]
    ] + [
        Listing(subject=parse_subject("203.0.113.9"), cause=c, reason=c.value * 60, source="f", listed_at=NOW)
        for c in causes
    ]  # fmt: skip
    allow = AllowEntry(subject=parse_subject("192.0.2.9"), note="mx", source="f", created_at=NOW)
    store.apply(Batch(listings=tuple(listings), allows=(allow,)), actor="f", action="f")
    publish(store, config, NOW)
    dns_cfg = config.dns
    responder = Responder(
        Snapshot(config.snapshot_path), zone_specs(config), nameservers=dns_cfg.nameservers,
        hostmaster=dns_cfg.hostmaster, negative_ttl=dns_cfg.negative_ttl,
        max_udp=dns_cfg.max_udp_answer, amplification=dns_cfg.max_amplification,
    )  # fmt: skip
    module = fastpath.extension()
    engine = fastpath.engine_for(responder, module) if module is not None else None
    rules = rrl.rules_for(3, [], [])
    py_limiter = rrl.RateLimiter(3, 2, rules)
    c_limiter = rrl.limiter_for(3, 2, rules, module) if module is not None else None
    counters = responder.counters

    def check(data: bytes) -> None:
        saved = list(counters)
        udp = responder.respond(data, 512)
        if engine is not None:
            fast = engine.respond(data, 512)
            if fast is not None and fast[0] != udp:
                raise Mismatch(f"C and Python differ:\n C {fast[0].hex()}\n P {udp!r}")
            counters[:] = saved
        tcp = responder.respond(data, None)
        if udp is not None:
            if len(udp) > 512 or len(udp) > 3 * len(data):
                edns = _edns_size(data)
                offered = max(512, edns or 512)
                if len(udp) > min(offered, 1232) or (offered <= 512 and len(udp) > 3 * len(data)):
                    raise Mismatch(f"UDP reply of {len(udp)} bytes to {len(data)} (EDNS {edns})")
            verdicts = [py_limiter.check("192.0.2.1", udp, 1)]
            if c_limiter is not None:
                verdicts.append(c_limiter.check("192.0.2.1", udp, 1))
                if verdicts[0] != verdicts[1]:
                    raise Mismatch(f"RRL verdicts differ: {verdicts}")
            rrl.slipped(udp)
        if tcp is not None and len(tcp) > 65535:
            raise Mismatch(f"TCP reply of {len(tcp)} bytes")

    seeds = [
        dns.message.make_query(name, rdtype, use_edns=edns, payload=size).to_wire()
        for name in ("7.2.0.192.bl.reputable.test", "9.113.0.203.bl.reputable.test",
                     "evil.example.dbl.reputable.test", "bl.reputable.test", "x.example",
                     "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.reputable.test")
        for rdtype in ("A", "TXT", "ANY", "SOA")
        for edns, size in ((False, 0), (0, 4096))
    ]  # fmt: skip
    return check, seeds


def _edns_size(data: bytes) -> int | None:
    """Return the UDP size the query's OPT record offers (as the server reads it), or None."""
    from reputable.publication.dnsbl import wire

    try:
        end, _labels = wire._parse_name(data, 12)
        edns = wire._parse_opt(data, end + 4, int.from_bytes(data[10:12], "big"))
    except (wire.FormatError, IndexError):
        return None
    return edns[0] if edns is not None else None


def _maillog(name: str) -> Callable[[], tuple[Check, list[bytes]]]:
    def setup() -> tuple[Check, list[bytes]]:
        from reputable.evidence.parsers.mailevent import Event
        from reputable.evidence.parsers.maillog import PARSERS
        from reputable.evidence.parsers.syslog_time import TimeParser

        scan = PARSERS[name]
        wanted = frozenset(Event)

        def check(data: bytes) -> None:
            text = _text(data)
            if not text.endswith("\n"):
                text += "\n"
            for _ in scan(
                text, first_line=1, times=TimeParser(NOW), wanted=wanted, counts=Counter()
            ):
                pass

        return check, _lines(SAMPLES / f"{name}.log")

    return setup


def _netlog(name: str) -> Callable[[], tuple[Check, list[bytes]]]:
    def setup() -> tuple[Check, list[bytes]]:
        from reputable.evidence.parsers.net import parse_lines

        def check(data: bytes) -> None:
            for _ in parse_lines(name, _text(data).splitlines(), now=NOW):
                pass

        return check, _lines(SAMPLES / f"{name}.log")

    return setup


def _lines(path: Path) -> list[bytes]:
    """Seeds: the sample file whole and its non-comment lines one by one."""
    data = _read(path)
    lines = [line for line in data.splitlines() if line and not line.startswith(b"#")]
    return [data, *lines[:200]]


def _arf() -> tuple[Check, list[bytes]]:
    from reputable.evidence.parsers import arf

    def check(data: bytes) -> None:
        arf.parse(data)

    saved = ROOT / "tests" / "evidence" / "fuzz_regressions"
    return check, [
        _read(p) for p in sorted([*(SAMPLES / "arf").glob("*.eml"), *saved.glob("arf-*")])
    ]


def _feed(kind: str, sample: str) -> Callable[[], tuple[Check, list[bytes]]]:
    def setup() -> tuple[Check, list[bytes]]:
        from reputable.evidence.parsers.feed_kinds import FEED_PARSERS
        from reputable.evidence.parsers.feed_model import CsvMapping

        parser = FEED_PARSERS[kind]
        mappings = [
            CsvMapping(),
            CsvMapping(column="address", reason_column="why", delimiter=";", header=True),
        ]

        def check(data: bytes) -> None:
            text = _text(data)
            for mapping in mappings if kind == "csv" else mappings[:1]:
                content = parser(text, mapping)
                if content.invalid > content.lines:
                    raise Mismatch(f"{content.invalid} invalid of {content.lines} lines")

        return check, _lines(FEED_SAMPLES / sample)

    return setup


def _rbldnsd() -> tuple[Check, list[bytes]]:
    from reputable.config import DEFAULT_TOML, parse_config
    from reputable.listings.imports.rbldnsd import ImportSpec, parse
    from reputable.listings.rules import Limits

    config = parse_config(DEFAULT_TOML)
    specs = [
        ImportSpec(path="fuzz", kind=kind, zone=zone.name, domain=domain, codes=zone.codes,
                   lookup_url=zone.lookup_url, now=NOW, limits=Limits())
        for kind, zone, domain in (("auto", config.ip_zone, False), ("dnset", config.domain_zone, True))
    ]  # fmt: skip

    def check(data: bytes) -> None:
        text = _text(data)
        for spec in specs:
            try:
                parse(text, spec)
            except Exception as exc:
                from reputable.core.errors import ReputableError

                if not isinstance(exc, ReputableError):
                    raise

    seeds = [_read(p) for p in sorted((SAMPLES / "rbldnsd").glob("*"))]
    return check, [s for s in seeds if s] or [
        b"127.0.0.2\n:127.0.0.2:spam $\n192.0.2.0/24\n!192.0.2.9\n"
    ]


def _jsonl() -> tuple[Check, list[bytes]]:
    from reputable.evidence.parsers import jsonl

    def check(data: bytes) -> None:
        jsonl.parse(_text(data).splitlines(), now=NOW)

    seeds = [
        b'{"subject": "192.0.2.1", "cause": "spam", "source": "x", "observed_at": "2026-01-01T00:00:00Z", "weight": 1}',
        b'{"subject": "evil.example", "cause": "malware_host", "source": "x", "detail": {"a": [1, 2]}}',
        b'[1, 2]\n{"subject": 5}\n',
    ]
    return check, seeds


def _hosting() -> tuple[Check, list[bytes]]:
    import io

    from reputable.cli.policy import _hosting_pairs
    from reputable.core.limits import bounded_lines

    def check(data: bytes) -> None:
        stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace")
        _hosting_pairs(bounded_lines(stream, 4096), "fuzz")

    return check, [b"192.0.2.1,one.example\n# c\n2001:db8::1,two.example\n", b'"a,b\n']


def _policy() -> tuple[Check, list[bytes]]:
    """The Postfix policy service: bytes in, one answer per request out, fast path == spec."""
    import asyncio

    from reputable.config import DEFAULT_TOML, parse_config
    from reputable.core.address import parse_subject
    from reputable.core.cause import Cause
    from reputable.evidence.detectors.mail_config import mail_params
    from reputable.listings.model import AllowEntry, Batch, Listing
    from reputable.policyd.decide import decide
    from reputable.policyd.protocol import MAX_REQUEST, parse_request, response, split_requests
    from reputable.policyd.server import PolicyService
    from reputable.policyd.settings import parse_policy
    from reputable.publication.lookup import Zones, lookup
    from reputable.publication.snapshot.publish import publish
    from reputable.publication.snapshot.view import Snapshot
    from reputable.testing import MemoryStore

    folder = Path(tempfile.mkdtemp(prefix="reputable-fuzz-policy-"))
    config = parse_config(DEFAULT_TOML, folder / "reputable.toml")
    store = MemoryStore()
    listed = {"192.0.2.66": Cause.SPAM, "192.0.2.0/28": Cause.COMPROMISED,
              "198.51.100.7": Cause.RDNS, "spammy.example": Cause.SPAM,
              "2001:db8::66": Cause.OPEN_PROXY}  # fmt: skip
    listings = tuple(
        Listing(subject=parse_subject(s), cause=c, reason="fuzz $", source="f", listed_at=NOW)
        for s, c in listed.items()
    )
    allow = AllowEntry(subject=parse_subject("192.0.2.5"), note="ok", source="f", created_at=NOW)
    store.apply(Batch(listings=listings, allows=(allow,)), actor="f", action="f")
    publish(store, config, NOW)
    snapshot = Snapshot(config.snapshot_path)
    zones = Zones.of(config)
    policy = parse_policy({"listen": "127.0.0.1:0"})
    traps = mail_params({"traps": {"addresses": ["trap@example.net"]}}).traps
    service = PolicyService(policy, zones, lambda: snapshot, traps, evidence=asyncio.Queue(10))

    class Transport:
        def __init__(self) -> None:
            self.out = bytearray()

        def write(self, data: bytes) -> None:
            self.out += data

        def close(self) -> None:
            pass

    loop = asyncio.new_event_loop()
    CLEANUPS.append(loop.close)

    def expected(block: bytes) -> bytes:
        request = parse_request(block)
        if request.error is not None:
            return response("DUNNO")
        return response(decide(request, lambda s: lookup(snapshot, s, zones), policy, zones).action)

    import logging

    from reputable.core import log

    logger = logging.getLogger(log._LOGGER.name)  # malformed requests are logged: not here

    def check(data: bytes) -> None:
        logger.disabled = True
        try:
            checked(data)
        finally:
            logger.disabled = False

    def checked(data: bytes) -> None:
        # Per block: the memoised path's answer equals decide() over parse_request().
        for block in split_requests(bytearray(data.replace(b"\r\n", b"\n") + b"\n\n")):
            if len(block) <= MAX_REQUEST and service.answer(block) != expected(block):
                raise Mismatch(f"fast path and decide() differ on {block[:200]!r}")

        # Over a connection, split at a data-chosen point: one answer per complete request.
        async def feed() -> bytes:
            connection = service.connection()
            transport = Transport()
            connection.connection_made(transport)  # type: ignore[arg-type]  # a stand-in
            cut = data[0] % (len(data) + 1) if data else 0
            connection.data_received(data[:cut])
            connection.data_received(data[cut:])
            connection.connection_lost(None)
            return bytes(transport.out)

        out = loop.run_until_complete(feed())
        whole = data.replace(b"\r\n", b"\n")
        blocks = whole.count(b"\n\n") if len(whole) <= MAX_REQUEST else None
        answers = out.count(b"\n\n")
        if not all(a.startswith(b"action=") for a in out.split(b"\n\n")[:-1]):
            raise Mismatch(f"an answer is not an action line: {out[:200]!r}")
        if blocks is not None and answers != _complete_requests(whole):
            raise Mismatch(f"{answers} answers for {_complete_requests(whole)} requests")

    seeds = [
        b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.66\n"
        b"helo_name=mx.spammy.example\nsender=a@spammy.example\nrecipient=trap@example.net\n\n",
        b"request=smtpd_access_policy\nclient_address=2001:db8::66\nclient_name=unknown\n\n"
        b"request=smtpd_access_policy\nclient_address=192.0.2.5\nhelo_name=[192.0.2.5]\n\n",
        b"request=smtpd_access_policy\r\nclient_address=::ffff:192.0.2.66\r\n\r\n",
        b"junk\n\nrequest=other\n\n=x\n\n",
    ]
    return check, seeds


def _complete_requests(data: bytes) -> int:
    """Return how many requests *data* holds (blocks split off at empty lines), as the server splits."""
    from reputable.policyd.protocol import split_requests

    return len(split_requests(bytearray(data)))


#: What a target's setup opened (event loops, the app's stores), closed after its run.
CLEANUPS: list[Callable[[], None]] = []
#: Per HTTP target: answers by status code (printed after the run).
STATUS: dict[str, Counter[int]] = {}


def _http(name: str, path: str, kind: str) -> Callable[[], tuple[Check, list[bytes]]]:
    """An HTTP API body target: the request goes through the real ASGI app (no socket)."""

    def setup() -> tuple[Check, list[bytes]]:
        import asyncio
        import json

        from reputable.app import open_store
        from reputable.builder import publish_now
        from reputable.config import load_config
        from reputable.core.address import parse_subject
        from reputable.core.cause import Cause
        from reputable.listings.model import Batch, Listing
        from reputable.testing import write_config
        from reputable.web.app import create_app
        from reputable.web.context import Context
        from reputable.web.settings import http_settings
        from reputable.web.tokens import digest, new_secret

        folder = Path(tempfile.mkdtemp(prefix=f"reputable-fuzz-{name}-"))
        config = load_config(write_config(folder, dns_port=1, http_port=1))
        store = open_store(config)
        secret = new_secret()
        store.add_token("fuzz", digest(secret), frozenset({"evidence:write"}), now=NOW.timestamp())
        rows = tuple(
            Listing(subject=parse_subject(s), cause=Cause.SPAM, reason="fuzz", source="f",
                    listed_at=NOW)
            for s in ("192.0.2.66", "spammy.example", "198.51.100.0/24")
        )  # fmt: skip
        store.apply(Batch(listings=rows), actor="f", action="f")
        store.close()
        publish_now(config)
        ctx = Context.create(config, http_settings(config), lambda: open_store(config))
        app = create_app(ctx)
        loop = asyncio.new_event_loop()
        CLEANUPS.extend((ctx.close, loop.close))
        counts = STATUS.setdefault(name, Counter())
        clients = [0]

        async def call(body: bytes, content_type: str) -> tuple[int, bytes]:
            clients[0] += 1  # another client address each time: rate limits are per address
            client = f"127.{clients[0] >> 16 & 255}.{clients[0] >> 8 & 255}.{clients[0] & 255}"
            scope = {
                "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
                "query_string": b"", "root_path": "", "client": (client, 40000),
                "server": ("127.0.0.1", 8080),
                "headers": [(b"host", b"127.0.0.1"), (b"content-type", content_type.encode()),
                            (b"content-length", str(len(body)).encode()),
                            (b"authorization", f"Bearer {secret}".encode())],
            }  # fmt: skip
            parts: list[bytes] = []
            status = [0]
            delivered = [False]

            async def receive() -> dict[str, object]:
                if not delivered[0]:
                    delivered[0] = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return {"type": "http.disconnect"}

            async def send(message: dict[str, object]) -> None:
                if message["type"] == "http.response.start":
                    status[0] = int(message["status"])  # type: ignore[call-overload]
                elif message["type"] == "http.response.body":
                    parts.append(bytes(message.get("body", b"")))  # type: ignore[arg-type]

            await app(scope, receive, send)
            return status[0], b"".join(parts)

        def check(data: bytes) -> None:
            content_type = "application/json"
            if kind == "evidence" and len(data) % 2:
                content_type = "application/x-ndjson"
            status, body = loop.run_until_complete(call(data, content_type))
            counts[status] += 1
            if status >= 500 or status < 200:
                raise Mismatch(f"{path} answered {status}: {body[:300]!r}")
            document = json.loads(body)
            if status >= 400:
                error = document.get("error", {})
                if not error.get("code") or not error.get("message"):
                    raise Mismatch(f"{status} without a clear error document: {body[:300]!r}")
            elif kind == "lookup" and len(document["results"]) != len(json.loads(data)["subjects"]):
                raise Mismatch("a batch answer lost or added a result")

        seeds = {
            "evidence": [
                b'{"subject": "192.0.2.1", "cause": "spam", "source": "x", "id": "a1"}\n'
                b'{"subject": "evil.example", "cause": "malware_host", "source": "x", "weight": 2}',
                b'[{"subject": "2001:db8::1", "cause": "compromised", "source": "y"}, 5]',
                b'{"subject": "192.0.2.9", "cause": "spam", "source": "x", "at": "2026-01-01T00:00:00Z"}',
            ],
            "lookup": [
                b'{"subjects": ["192.0.2.66", "spammy.example", "198.51.100.0/24", "::1"]}',
                b'{"subjects": ["192.0.2.1"], "extra": 1}',
            ],
            "urls": [
                b'{"urls": ["http://spammy.example/a/../b#x", "https://192.0.2.66:8443/", "x"]}',
                b'{"urls": ["HTTP://WWW.SPAMMY.EXAMPLE./%41"]}',
            ],
            "delist": [
                b'{"subject": "192.0.2.66", "contact": "a@example.net", "note": "fixed"}',
                b'{"subject": "spammy.example", "contact": "x", "note": ""}',
            ],
        }[kind]
        return check, seeds

    return setup


TARGETS: dict[str, Callable[[], tuple[Check, list[bytes]]]] = {
    "dns": _dns,
    "postfix": _maillog("postfix"),
    "exim": _maillog("exim"),
    **{name: _netlog(name) for name in ("sshd", "nginx", "apache", "netfilter", "flows")},
    "arf": _arf,
    **{f"feed_{kind}": _feed(kind, sample) for kind, sample in (
        ("plain", "plain.txt"), ("drop", "drop.txt"), ("urlhaus", "urlhaus.csv"),
        ("phishtank", "phishtank.csv"), ("openphish", "openphish.txt"), ("csv", "generic.csv"))},
    "rbldnsd": _rbldnsd,
    "jsonl": _jsonl,
    "hosting": _hosting,
    "policy": _policy,
    "http_evidence": _http("http_evidence", "/api/v1/evidence", "evidence"),
    "http_lookup": _http("http_lookup", "/api/v1/lookup", "lookup"),
    "http_urls": _http("http_urls", "/api/v1/urls:find", "urls"),
    "http_delist": _http("http_delist", "/api/v1/delist", "delist"),
}  # fmt: skip


# -- running ------------------------------------------------------------------------------------
def guarded(name: str, check: Check) -> Check:
    """Return *check* that lets ReputableError pass (a clean refusal) and saves every crash."""
    from reputable.core.errors import ReputableError

    def run(data: bytes) -> None:
        try:
            check(data)
        except ReputableError:
            return
        except Exception:
            path = Path(f"fuzz-crash-{name}-{hashlib.sha256(data).hexdigest()[:12]}.bin")
            path.write_bytes(data)
            print(f"CRASH in {name}: reproducer {path} ({len(data)} bytes: {data[:80]!r})")
            traceback.print_exc()
            raise

    return run


def mutations(seeds: list[bytes], rng: random.Random) -> Callable[[], bytes]:
    """Return a generator of inputs: seeds mutated by flips, inserts, splices, cuts, blobs."""
    seeds = [s for s in seeds if s] or [b"\0"]
    interesting = [b"\0", b"\xff", b"\n", b"$", b"$$", b"%", b",", b'"', b";", b"#", b":", b"::",
                   b"\xc0\x0c", b"/", b".", b"9" * 40, b"\x3f", b"\r\n", b"\xe2\x80\xae", b"{", b"}"]  # fmt: skip

    def one() -> bytes:
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.choice((1, 1, 2, 3, 8))):
            op = rng.randrange(7)
            pos = rng.randrange(len(data) + 1)
            if op == 0 and data:
                data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
            elif op == 1:
                data[pos:pos] = rng.choice(interesting)
            elif op == 2:
                other = rng.choice(seeds)
                start = rng.randrange(len(other) + 1)
                data[pos:pos] = other[start : start + rng.randrange(1, 64)]
            elif op == 3:
                del data[pos : pos + rng.randrange(1, 16)]
            elif op == 4:
                data[pos:pos] = rng.randbytes(rng.randrange(1, 32))
            elif op == 5 and data:
                data[min(pos, len(data) - 1)] = rng.randrange(256)
            else:
                data = data[:pos]
        return bytes(data)

    return one


def run_mutate(name: str, runs: int, seed: int) -> tuple[int, float]:
    """Run *runs* mutated inputs through target *name*; return (inputs, seconds)."""
    check, seeds = TARGETS[name]()
    try:
        run = guarded(name, check)
        for s in seeds:
            run(s)
        make = mutations(seeds, random.Random(f"{name}:{seed}"))
        started = time.perf_counter()
        for _ in range(runs):
            run(make())
        return runs, time.perf_counter() - started
    finally:
        while CLEANUPS:
            CLEANUPS.pop()()


def run_atheris(name: str, runs: int, seed: int) -> None:
    """Run target *name* under atheris in this process (libFuzzer exits the process at the end)."""
    import atheris  # type: ignore[import-not-found]  # optional: pip install atheris

    with atheris.instrument_imports(include=["reputable"]):
        check, seeds = TARGETS[name]()
    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    for i, s in enumerate(seeds):
        (corpus / f"seed{i}").write_bytes(s)
    run = guarded(name, check)
    print(f"target {name} (atheris, libFuzzer's final stats follow)", flush=True)
    atheris.Setup(
        [
            sys.argv[0],
            f"-runs={runs}",
            f"-seed={seed}",
            "-max_len=4096",
            "-print_final_stats=1",
            str(corpus),
        ],
        run,
    )
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and fuzz."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="targets to run (default: all; see --list)")
    parser.add_argument("--runs", type=int, default=100_000, help="inputs per target")
    parser.add_argument("--engine", choices=("atheris", "mutate"), default="mutate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reproduce", type=Path, help="run the saved input FILE once")
    parser.add_argument("--list", action="store_true", help="print the targets and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(TARGETS))
        return 0
    names = args.targets or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; --list shows them")
    if args.reproduce is not None:
        check, _seeds = TARGETS[names[0]]()
        guarded(names[0], check)(args.reproduce.read_bytes())
        print("no crash")
        return 0
    with open("/proc/loadavg") as f:
        print(f"loadavg {f.read().strip()}")
    if args.engine == "atheris":
        if len(names) == 1:
            run_atheris(names[0], args.runs, args.seed)
            return 0
        failed = 0
        for name in names:  # atheris runs one target per process
            cmd = [
                sys.executable,
                __file__,
                name,
                "--engine",
                "atheris",
                "--runs",
                str(args.runs),
                "--seed",
                str(args.seed),
            ]
            failed += subprocess.run(cmd, check=False).returncode != 0
        return 1 if failed else 0
    crashed = 0
    for name in names:
        try:
            count, seconds = run_mutate(name, args.runs, args.seed)
        except Exception:  # reported by guarded(); go on with the next target
            crashed += 1
            continue
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(STATUS.get(name, Counter()).items()))
        print(
            f"{name:16} {count:>10,} inputs {seconds:8.1f} s {count / seconds:>10,.0f} inputs/s  0 crashes"
            + (f"  (HTTP status: {statuses})" if statuses else "")
        )
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
