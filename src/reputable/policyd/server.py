"""The policy service inside ``serve``: TCP on ``policy_service.listen``, many connections.

Each connection reads requests as they come (Postfix sends the next one only after our
answer), answers each from the current snapshot, and never drops a connection over a bad
request: malformed input gets DUNNO and is counted. Trap recipients become spam evidence
in the store at once (a bounded queue, written in a thread) and wake the policy loop.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Any, Final, Protocol, cast

from reputable.core import log
from reputable.core.address import Domain, Subject
from reputable.core.cause import Cause
from reputable.core.errors import ReputableError
from reputable.evidence.detectors.mail_config import Traps, mail_params
from reputable.evidence.model import Evidence
from reputable.policyd.decide import Decision, decide
from reputable.policyd.fast import Decider, parse_clean
from reputable.policyd.protocol import MAX_REQUEST, parse_request, response, split_requests
from reputable.policyd.settings import DUNNO, VERBS, PolicySettings, parse_policy
from reputable.publication.lookup import Lookup, Zones, lookup
from reputable.publication.snapshot.holder import SnapshotHolder
from reputable.publication.snapshot.view import Snapshot

SOURCE: Final = "policyd:trap"
DUNNO_WIRE: Final = response(DUNNO)
_VERB_KEY: Final = {verb: f"verb_{verb}" for verb in VERBS}
EVIDENCE_QUEUE: Final = 10_000
#: Bytes read per receive, into one buffer all connections share (the loop has one thread,
#: and each read is copied out before the next). asyncio's plain ``Protocol`` receives into a
#: new 256 KiB bytes object per read: 12 us of CPU more per call than ``recv_into`` here.
READ_SIZE: Final = 65536


class EvidenceStore(Protocol):
    """Where trap evidence goes."""

    def add_evidence(self, items: Any) -> int:
        """Store evidence; return how many were new."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...


class NameCache:
    """Lookups of domain subjects, kept per snapshot: HELO names and sender domains repeat.

    Mail traffic names the same few domains over and over (gmail.com, the big senders' HELO
    names), and a domain lookup walks the snapshot label by label in Python; addresses are
    looked up fresh each time (one bisect). The cache is emptied when the snapshot changes
    and when it reaches *size* entries, so it can never answer from an older snapshot.
    """

    def __init__(self, size: int = 65536) -> None:
        self.size = size
        self.snapshot: Snapshot | None = None
        self.entries: dict[Subject, Lookup] = {}
        self.parsed: dict[str, Domain | None] = {}  # name text -> domain (no snapshot needed)

    def lookup(self, snapshot: Snapshot, subject: Subject, zones: Zones) -> Lookup:
        """Return the lookup of *subject* in *snapshot*, from the cache for a domain."""
        if not isinstance(subject, Domain):
            return lookup(snapshot, subject, zones)
        if snapshot is not self.snapshot or len(self.entries) >= self.size:
            self.entries.clear()
            self.snapshot = snapshot
        if len(self.parsed) >= self.size:
            self.parsed.clear()
        found = self.entries.get(subject)
        if found is None:
            found = self.entries[subject] = lookup(snapshot, subject, zones)
        return found


class PolicyService:
    """Answers policy requests; counts requests, errors, verbs and trap hits."""

    def __init__(
        self,
        settings: PolicySettings,
        zones: Zones,
        snapshots: Callable[[], Snapshot],
        traps: Traps,
        *,
        evidence: asyncio.Queue[Evidence] | None = None,
    ) -> None:
        self.settings = settings
        self.zones = zones
        self.snapshots = snapshots
        self.traps = traps
        self.evidence = evidence
        self.counts: Counter[str] = Counter()
        self.names = NameCache()
        self.decider = Decider(settings, zones)
        self.has_traps = bool(traps.addresses or traps.domains)
        self.read_buffer = memoryview(bytearray(READ_SIZE))

    def answer(self, block: bytes) -> bytes:
        """Return the wire answer to one request block (never raises on bad input).

        A well-formed request takes the memoised path (policyd/fast.py); anything else is
        parsed by ``parse_request``, which names what is wrong, and decided by ``decide``.
        """
        attrs = parse_clean(block)
        if attrs is None:
            return self._answer_parsed(block)
        self.counts["requests"] += 1
        try:
            verb, action = self.decider.decide(self.snapshots(), attrs)
        except ReputableError as exc:  # no snapshot yet: let mail through, say so
            self.counts["errors"] += 1
            log.error("policy_lookup_failed", error=str(exc))
            verb = action = DUNNO
        self.counts[_VERB_KEY[verb]] += 1
        if (
            self.has_traps
            and attrs.get("protocol_state", "").upper() == "RCPT"
            and self.traps.hit(attrs.get("recipient", ""))
        ):
            self._trap(attrs)
        return DUNNO_WIRE if action == DUNNO else response(action)

    def _answer_parsed(self, block: bytes) -> bytes:
        """Answer *block* through ``parse_request`` and ``decide`` (malformed or unusual input)."""
        request = parse_request(block)
        self.counts["requests"] += 1
        if request.error is not None:
            self.counts["errors"] += 1
            self.counts["verb_DUNNO"] += 1
            log.warning("policy_request_malformed", error=request.error)
            return response(DUNNO)
        try:
            snapshot = self.snapshots()

            def look(subject: Subject) -> Lookup:
                return self.names.lookup(snapshot, subject, self.zones)

            decision = decide(request, look, self.settings, self.zones, self.names.parsed)
        except ReputableError as exc:  # no snapshot yet: let mail through, say so
            self.counts["errors"] += 1
            log.error("policy_lookup_failed", error=str(exc))
            decision = Decision(action=DUNNO, verb=DUNNO)
        self.counts[f"verb_{decision.verb}"] += 1
        if request.get("protocol_state").upper() == "RCPT" and self.traps.hit(
            request.get("recipient")
        ):
            self._trap(request.attrs)
        return response(decision.action)

    def _trap(self, attrs: dict[str, str]) -> None:
        """Queue spam evidence on the client of a message to a trap recipient."""
        try:
            client = ip_address(attrs.get("client_address", ""))
        except ValueError:
            return
        self.counts["traps"] += 1
        item = Evidence(
            subject=client,
            cause=Cause.SPAM,
            source=SOURCE,
            observed_at=datetime.now(UTC),
            weight=self.traps.weight,
            detail={
                "detector": "spam_trap",
                "trap": attrs.get("recipient", "").lower(),
                "sender": attrs.get("sender", ""),
                "helo": attrs.get("helo_name", ""),
                "client_name": attrs.get("client_name", ""),
                "queue_id": attrs.get("queue_id", ""),
            },
        )
        if self.evidence is None:
            return
        try:
            self.evidence.put_nowait(item)
        except asyncio.QueueFull:
            self.counts["traps_dropped"] += 1
            log.error("policy_trap_queue_full", client=str(client))

    def connection(self) -> PolicyConnection:
        """Return the protocol object of one new connection (``loop.create_server`` factory)."""
        self.counts["connections"] += 1
        return PolicyConnection(self)

    def metrics(self) -> str:
        """Return the counters in Prometheus text format."""
        c = self.counts
        lines = [
            "# HELP reputable_policy_requests_total Postfix policy requests answered.",
            "# TYPE reputable_policy_requests_total counter",
            f"reputable_policy_requests_total {c['requests']}",
            "# HELP reputable_policy_errors_total Malformed requests (answered DUNNO).",
            "# TYPE reputable_policy_errors_total counter",
            f"reputable_policy_errors_total {c['errors']}",
            "# HELP reputable_policy_actions_total Answers by verb.",
            "# TYPE reputable_policy_actions_total counter",
        ]
        for verb in ("REJECT", "DEFER_IF_PERMIT", "PREPEND", "DUNNO"):
            lines.append(f'reputable_policy_actions_total{{verb="{verb}"}} {c["verb_" + verb]}')
        lines += [
            "# HELP reputable_policy_trap_hits_total Requests to trap recipients (spam evidence).",
            "# TYPE reputable_policy_trap_hits_total counter",
            f"reputable_policy_trap_hits_total {c['traps']}",
        ]
        return "\n".join(lines) + "\n"


class PolicyConnection(asyncio.BufferedProtocol):
    """One Postfix connection: bytes in, one answer per complete request out.

    A protocol callback rather than a stream coroutine: the request path is the hot loop of
    the service (bench/policy_service.py), and a callback saves the task switches of
    ``readuntil``/``drain`` per request. A buffered one: the transport receives into the
    service's read buffer (``READ_SIZE``). An idle connection is closed after the timeout.
    """

    def __init__(self, service: PolicyService) -> None:
        self.service = service
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.idle: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop  # set by connection_made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport and start the idle timer."""
        self.transport = cast(asyncio.Transport, transport)  # a TCP server gives a Transport
        self.loop = asyncio.get_running_loop()
        self._rearm()

    def _rearm(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.idle = self.loop.call_later(self.service.settings.timeout, self._expire)

    def _expire(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def get_buffer(self, sizehint: int) -> memoryview:
        """Return where the transport receives the next bytes (the shared read buffer)."""
        return self.service.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        """Handle the *nbytes* just received (copied out: the buffer is shared)."""
        self.data_received(bytes(self.service.read_buffer[:nbytes]))

    def data_received(self, data: bytes) -> None:
        """Answer every complete request in the buffer, in order."""
        buffer = self.buffer
        if not buffer and data.find(b"\n\n") == len(data) - 2 >= 0 and b"\r" not in data:
            blocks = [data[:-2]]  # the usual read: exactly one whole request
        else:
            # CRLF (a person typing) becomes LF once, also when split across two reads: the
            # buffer is kept normalised, a CR at its end may still pair with this read's LF.
            if buffer[-1:] == b"\r" and data[:1] == b"\n":
                del buffer[-1]
            buffer += data.replace(b"\r\n", b"\n") if b"\r" in data else data
            blocks = split_requests(buffer)
        if not blocks and len(buffer) > MAX_REQUEST:
            blocks = [b"request=oversized"]  # answered as malformed, buffer dropped
            buffer.clear()
        if blocks and self.transport is not None:
            if len(blocks) == 1:  # Postfix waits for each answer: one request per read
                self.transport.write(self._answer(blocks[0]))
            else:
                self.transport.write(b"".join([self._answer(b) for b in blocks]))
        idle = self.idle
        if idle is not None and idle.when() - self.loop.time() < self.service.settings.timeout - 1:
            self._rearm()  # at most once a second: timers are not free

    def _answer(self, block: bytes) -> bytes:
        """Answer one request; a bug answers DUNNO (counted) rather than drop the connection."""
        try:
            return self.service.answer(block)
        except Exception as exc:  # the connection's supervisor: Postfix must get an answer
            self.service.counts["errors"] += 1
            log.error("policy_request_failed", error=f"{type(exc).__name__}: {exc}")
            return response(DUNNO)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the idle timer."""
        if self.idle is not None:
            self.idle.cancel()
        self.transport = None


async def write_evidence(
    queue: asyncio.Queue[Evidence],
    store: EvidenceStore,
    on_evidence: Callable[[], None] | None,
    stop: asyncio.Event,
    thread: Executor | None = None,
) -> None:
    """Store queued trap evidence in batches as it comes, then wake the policy loop.

    The writes run in *thread* (the store's own one-thread executor in ``serve``), so the
    store is never closed under a write still running there.
    """
    while not stop.is_set() or not queue.empty():
        try:
            async with asyncio.timeout(0.5):
                first = await queue.get()
        except TimeoutError:
            continue
        batch = [first]
        while not queue.empty() and len(batch) < 1000:
            batch.append(queue.get_nowait())
        try:
            added = await asyncio.get_running_loop().run_in_executor(
                thread, store.add_evidence, batch
            )
        except ReputableError as exc:
            log.error("policy_trap_store_failed", error=str(exc), items=len(batch))
            continue
        log.info("policy_trap_evidence", items=len(batch), new=added)
        if on_evidence is not None:
            on_evidence()


async def run_policy_service(
    config: Any,
    store_factory: Callable[[], EvidenceStore],
    stop: asyncio.Event,
    *,
    on_evidence: Callable[[], None] | None = None,
    service_ready: Callable[[PolicyService], None] | None = None,
) -> None:
    """Serve ``[policy_service]`` until *stop* (serve's hook); absent section: nothing."""
    settings = parse_policy(config.extra.get("policy_service"))
    if not settings.enabled:
        return
    holder = SnapshotHolder(config.snapshot_path)
    queue: asyncio.Queue[Evidence] = asyncio.Queue(EVIDENCE_QUEUE)
    service = PolicyService(
        settings,
        Zones.of(config),
        holder.current,
        mail_params(config.extra).traps,
        evidence=queue,
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(service.connection, settings.host, settings.port)
    bound = server.sockets[0].getsockname()
    log.info("policy_service_ready", listen=f"{bound[0]}:{bound[1]}")
    if service_ready is not None:
        service_ready(service)
    store = store_factory()
    # One thread owns the store: a cancelled write keeps running there, and the close queued
    # behind it cannot pull the SQLite connection from under it (a SIGSEGV in CPython 3.11).
    thread = ThreadPoolExecutor(1, thread_name_prefix="policyd-store")
    try:
        async with server, asyncio.TaskGroup() as group:
            group.create_task(write_evidence(queue, store, on_evidence, stop, thread))
            await stop.wait()
            server.close()
    finally:
        thread.submit(store.close)
        thread.shutdown(wait=False)
