"""Zone transfers to standard secondaries: AXFR (RFC 5936), IXFR (RFC 1995), NOTIFY (RFC 1996).

Transfers go over TCP only (the UDP path answers REFUSED) and need a TSIG signature (RFC 8945,
hmac-sha256) with a key of ``[transfer.keys]``, unless the client's address is in
``[transfer] allow``. The records are those of ``publication/exports/zone.py``, so a secondary
answers as we do (docs/transfer.md). The serial is the one the worker answers: the base
snapshot's, or its overlay's once a change went there, so a one-entry change reaches the
secondaries by NOTIFY and IXFR within seconds, without waiting for the next full rebuild.
Each worker keeps the last ``history`` states it loaded (base with overlay); IXFR from one
of their serials sends the difference, from any other serial the whole zone (RFC 1995 §4).
The difference is computed from the names of the changed addresses and ranges only (the
overlays' addresses and each new base's ``since`` header, snapshot/overlay.py, which names
what audited writes, policy runs and expiries moved), so its cost follows the change, not
the zone; when nothing says what changed (a bulk import, a configuration change, history
gone), or a domain changed (for the zones holding domains), a small zone's two states are
rendered and compared, and a zone above :data:`COMPARE_MAX` entries is sent whole instead
(RFC 1995 §4: comparing costs two renderings and two sets of records, sending it one shared
rendering in flat memory). AXFRs of one zone and serial that overlap (the secondaries after a NOTIFY, or at
start-up) follow one rendering of its messages, bounded in memory (:class:`_Rendering`).
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Final, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.rrset
import dns.tsig

from reputable.core import log
from reputable.core.errors import ConfigError
from reputable.publication.exports.zone import (
    Record,
    ZoneSettings,
    records,
    records_at,
    soa_record,
    zone_entries,
    zone_settings,
)
from reputable.publication.settings import PublicationConfig as Config
from reputable.publication.snapshot.overlay import Changed, changed_between
from reputable.publication.snapshot.view import Snapshot

AXFR: Final = 252
IXFR: Final = 251
MESSAGE_BUDGET: Final = 16_000  # bytes of records per message (RFC 5936 §2.2: many per message)
SHARED_BYTES: Final = 16 << 20  # AXFR message parts one rendering holds for its followers
#: Entries (exports/zone.zone_entries) above which an IXFR after a change nothing names is
#: answered with the whole zone (RFC 1995 §4) rather than by comparing both whole zones. The
#: compare renders both states into sets of records (bench/ixfr_change.py --mode import, after
#: a five-line `import rbldnsd`): at 1M hosts 48-52 s CPU and the answering process from
#: 32-44 MB to ~1,050 MB, where the one shared AXFR rendering that replaces it took 24-25 s
#: and 115-127 MB; at 20k hosts 0.99 s CPU and +30 MB, against 0.56 s and +8 MB. Comparing
#: always costs ~2x the CPU of sending; up to this bound that stays near a second and tens
#: of MB, a price worth a 14-record answer instead of the zone's 40k records on the wire and
#: a secondary's reload; above it the seconds and memory grow with the zone.
COMPARE_MAX: Final = 20_000
_KEYS: Final = {"allow", "notify", "history", "keys", "rpz"}


@dataclass(frozen=True, slots=True)
class TransferSettings:
    """``[transfer]``: who may transfer, whom to notify, how much history IXFR keeps."""

    keyring: dict[dns.name.Name, dns.tsig.Key]
    allow: tuple[IPv4Network | IPv6Network, ...]
    notify: tuple[tuple[str, int], ...]
    history: int
    rpz: bool = False  # also offer each [[sinks]] kind = "rpz" zone (its file) by transfer


def transfer_settings(config: Config) -> TransferSettings:
    """Return the ``[transfer]`` settings of *config*; a bad value names the key and the fix."""
    raw = config.extra.get("transfer", {})
    if not isinstance(raw, dict):
        raise ConfigError("[transfer] must be a table")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigError(f"[transfer]: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    keyring: dict[dns.name.Name, dns.tsig.Key] = {}
    for name, secret in dict(raw.get("keys", {})).items():
        try:
            base64.b64decode(str(secret), validate=True)
            key = dns.tsig.Key(name, str(secret), dns.tsig.HMAC_SHA256)
        except (binascii.Error, ValueError, dns.exception.DNSException) as exc:
            raise ConfigError(
                f"transfer.keys.{name}: not a base64 secret ({exc}); make one with"
                " `openssl rand -base64 32`"
            ) from exc
        keyring[key.name] = key
    try:
        allow = tuple(ip_network(str(a), strict=False) for a in raw.get("allow", []))
    except ValueError as exc:
        raise ConfigError(f"transfer.allow: {exc}; give addresses or CIDRs") from exc
    notify: list[tuple[str, int]] = []
    for target in raw.get("notify", []):
        host, _, port = str(target).rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"transfer.notify: {target!r}: write HOST:PORT, e.g. 127.0.0.1:53")
        notify.append((host.strip("[]"), int(port)))
    history = raw.get("history", 8)
    if not isinstance(history, int) or history < 1:
        raise ConfigError(f"transfer.history: {history!r}: give a number of snapshots >= 1")
    rpz = raw.get("rpz", False)
    if not isinstance(rpz, bool):
        raise ConfigError(f"transfer.rpz: {rpz!r}: write true or false")
    return TransferSettings(keyring, allow, tuple(notify), history, rpz)


class RpzSource:
    """One ``[[sinks]]`` RPZ zone offered by AXFR/IXFR: its file, re-read when it changes.

    The file is what the sink writes after each snapshot (exports/rpz.py, serial = the store's
    serial); the last ``history`` versions are kept for IXFR, as the DNSBL zones' snapshots.
    """

    def __init__(self, origin: str, path: Path, history: int) -> None:
        self.origin = dns.name.from_text(origin)
        self.path = path
        self.versions: deque[tuple[int, Record, frozenset[Record]]] = deque(maxlen=history + 1)
        self._seen: tuple[int, int] | None = None

    def current(self) -> tuple[int, Record, frozenset[Record]] | None:
        """Return (serial, SOA record, other records) of the newest file; None before one."""
        try:
            st = os.stat(self.path)
        except OSError:
            return self.versions[-1] if self.versions else None
        if (st.st_ino, st.st_mtime_ns) != self._seen:
            try:
                version = _read_rpz(self.path, self.origin)
            except (OSError, ValueError, dns.exception.DNSException) as exc:
                log.warning("rpz_unreadable", path=str(self.path), error=str(exc))
                return self.versions[-1] if self.versions else None
            self._seen = (st.st_ino, st.st_mtime_ns)
            if not self.versions or self.versions[-1][0] != version[0]:
                self.versions.append(version)
        return self.versions[-1] if self.versions else None

    def ttl(self) -> int:
        """Return the zone's TTL (of its SOA; 300 before the file exists)."""
        return 300


def _read_rpz(path: Path, origin: dns.name.Name) -> tuple[int, Record, frozenset[Record]]:
    """Return (serial, SOA, records) of the RPZ master file at *path*."""
    import dns.zone

    zone = dns.zone.from_text(path.read_text(encoding="utf-8"), origin, relativize=True)
    soa: Record | None = None
    serial = 0
    found: set[Record] = set()
    for name, node in zone.nodes.items():
        owner = "" if name == dns.name.empty else name.to_text()
        for rdataset in node.rdatasets:
            rtype = dns.rdatatype.to_text(rdataset.rdtype)
            for rdata in rdataset:
                text = rdata.to_text(origin=origin, relativize=False)
                if rdataset.rdtype == dns.rdatatype.SOA:
                    soa = Record("", "SOA", text)
                    serial = int(rdata.serial)
                else:
                    found.add(Record(owner, rtype, text))
    if soa is None:
        raise ValueError(f"{path}: no SOA record")
    return serial, soa, frozenset(found)


def rpz_sources(config: Config, settings: TransferSettings) -> dict[dns.name.Name, RpzSource]:
    """Return the RPZ zones ``[transfer] rpz = true`` offers: one per ``[[sinks]]`` rpz."""
    if not settings.rpz:
        return {}
    from reputable.publication.sinks import sinks_of

    sources = [
        RpzSource(sink.origin, sink.path, settings.history)
        for sink in sinks_of(config)
        if sink.kind == "rpz"
    ]
    if not sources:
        raise ConfigError(
            'transfer.rpz = true but there is no [[sinks]] kind = "rpz" to offer;'
            " add one (docs/transfer.md) or set rpz = false"
        )
    return {source.origin: source for source in sources}


def is_transfer(packet: bytes) -> bool:
    """True when *packet* is a query for AXFR or IXFR (a cheap look at the question)."""
    pos = 12
    try:
        while packet[pos]:
            pos += packet[pos] + 1
        (qtype,) = struct.unpack_from(">H", packet, pos + 1)
    except (IndexError, struct.error):
        return False
    return bool(qtype in (AXFR, IXFR))


class Transfers:
    """Answers AXFR and IXFR for one worker from its current and recent snapshots."""

    def __init__(self, config: Config, settings: TransferSettings | None = None) -> None:
        self.settings = settings or transfer_settings(config)
        self.zones = {dns.name.from_text(z.name): z for z in zone_settings(config)}
        self.rpz = rpz_sources(config, self.settings)
        dns_ = config.dns
        self._rpz_settings = {
            name: ZoneSettings(
                name.to_text(omit_final_dot=True),
                "rpz",
                source.ttl(),
                dns_.nameservers,
                dns_.hostmaster,
                dns_.negative_ttl,
            )
            for name, source in self.rpz.items()
        }
        self.history: deque[Snapshot] = deque(maxlen=self.settings.history + 1)
        self.sent = 0  # transfers answered
        self.refused = 0
        #: Per zone: kind ("axfr", "ixfr") and record count of the last transfer sent.
        self.last: dict[str, tuple[str, int]] = {}
        #: Records rendered to compute IXFR differences (both sides), and how many of those
        #: differences had to render whole zones: the cost of IXFR, for tests and the log.
        self.rendered = 0
        self.whole_zone_diffs = 0
        #: IXFR differences by (zone, from serial, to serial), shared by the secondaries.
        self._diffs: dict[tuple[str, int, int], tuple[list[Record], list[Record]]] = {}
        self._diff_locks: dict[tuple[str, int, int], threading.Lock] = {}
        self._lock = threading.Lock()
        #: AXFR message parts by (zone, serial), followed by every transfer that overlaps
        #: the first (bounded: ``shared_bytes`` held per rendering, docs/transfer.md).
        self._renderings: dict[tuple[str, int], _Rendering] = {}
        self.shared_bytes = SHARED_BYTES
        #: Above this many entries an unnamed change is sent as the whole zone (tests lower it).
        self.compare_max = COMPARE_MAX
        self.walks = 0  # whole-zone walks rendered for AXFR (shared ones count once)

    wants = staticmethod(is_transfer)

    def remember(self, snapshot: Snapshot) -> None:
        """Keep *snapshot* (with its overlay) as the newest (the oldest drops out of IXFR
        history); a new overlay is a new serial, as a new base is."""
        if not self.history or self.history[-1].effective_serial != snapshot.effective_serial:
            self.history.append(snapshot)
        else:
            self.history[-1] = snapshot

    def answer(self, packet: bytes, host: str) -> list[bytes]:
        """Return the messages answering the transfer query *packet* from *host*."""
        return list(self.stream(packet, host))

    def stream(self, packet: bytes, host: str) -> Iterator[bytes]:
        """Yield the messages answering the transfer query *packet* from *host*, each as it
        is built: the first leaves at once, and a transfer holds one message in memory.

        Lazy: nothing is read or checked before the first message is asked for.
        """
        yield from self._answer(packet, host)

    def _answer(self, packet: bytes, host: str) -> Iterable[bytes]:
        try:
            query = dns.message.from_wire(packet, keyring=self.settings.keyring)
        except dns.message.UnknownTSIGKey:
            return self._tsig_error(packet, dns.rcode.BADKEY, host)
        except dns.tsig.BadTime:
            return self._tsig_error(packet, dns.rcode.BADTIME, host)
        except (dns.tsig.BadSignature, dns.tsig.PeerError):
            return self._tsig_error(packet, dns.rcode.BADSIG, host)
        except dns.exception.DNSException:
            return self._error(packet, dns.rcode.FORMERR, "malformed", host)
        question = query.question[0] if len(query.question) == 1 else None
        if question is not None and question.name in self.rpz:
            if not self._permitted(query, host):
                return self._refuse(query, "no TSIG and not in transfer.allow", host)
            return self._rpz(query, question.name, question.rdtype, host)
        zone = self.zones.get(question.name) if question is not None else None
        if question is None or zone is None or not self.history:
            return self._refuse(query, "not our zone", host)
        if not self._permitted(query, host):
            return self._refuse(query, "no TSIG and not in transfer.allow", host)
        current = self.history[-1]
        if question.rdtype == IXFR:
            old = self._client_serial(query)
            if old is not None:
                return self._ixfr(query, zone, current, old, host)
        return self._axfr(query, zone, current, host)

    def _permitted(self, query: dns.message.Message, host: str) -> bool:
        return query.had_tsig or any(_inside(host, net) for net in self.settings.allow)

    # -- RPZ ---------------------------------------------------------------------------------
    def _rpz(
        self, query: dns.message.Message, name: dns.name.Name, rdtype: int, host: str
    ) -> list[bytes]:
        """Answer AXFR or IXFR of an RPZ zone from its file's versions."""
        source = self.rpz[name]
        zone = self._rpz_settings[name]
        current = source.current()
        if current is None:
            return self._error(query.to_wire(), dns.rcode.SERVFAIL, "no RPZ file yet", host)
        serial, soa, recs = current
        self.sent += 1
        old = self._client_serial(query) if rdtype == IXFR else None
        base = next((v for v in source.versions if v[0] == old), None)
        if old == serial:
            body = [soa]
        elif base is not None:
            deleted, added = sorted(base[2] - recs), sorted(recs - base[2])
            body = [soa, base[1], *deleted, soa, *added, soa]
        else:
            body = [soa, *sorted(recs), soa]
        kind = "ixfr" if rdtype == IXFR and (old == serial or base is not None) else "axfr"
        self.last[zone.name] = (kind, len(body))
        log.info(f"rpz_{kind}", zone=zone.name, serial=serial, client=host, records=len(body))
        return list(self._messages(query, zone, iter(body)))

    def soa_reply(self, packet: bytes) -> bytes | None:
        """Answer a SOA query for an RPZ zone (secondaries probe the serial over UDP first).

        None for anything else: the caller answers it as usual (REFUSED outside our zones).
        """
        if not self.rpz:
            return None
        try:
            query = dns.message.from_wire(packet)
        except dns.exception.DNSException:
            return None
        if len(query.question) != 1 or query.question[0].name not in self.rpz:
            return None
        question = query.question[0]
        current = self.rpz[question.name].current()
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        response.flags &= ~dns.flags.RA
        if current is None:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        ttl = self._rpz_settings[question.name].ttl
        soa = dns.rrset.from_text(question.name, ttl, "IN", "SOA", current[1].rdata)
        if question.rdtype in (dns.rdatatype.SOA, dns.rdatatype.ANY):
            response.answer.append(soa)
        else:
            response.authority.append(soa)
        return response.to_wire()

    def _axfr(
        self, query: dns.message.Message, zone: ZoneSettings, current: Snapshot, host: str
    ) -> Iterator[bytes]:
        """Answer with the whole zone, its messages shared with every transfer of the same
        zone and serial that overlaps this one (:class:`_Rendering`): N secondaries after a
        NOTIFY cost one walk of the zone, not N."""
        self.sent += 1
        count = 0
        question = query.question[0]
        head = _name_wire(question.name) + struct.pack(">HH", question.rdtype, question.rdclass)

        def counted() -> Iterator[tuple[int, bytes]]:
            nonlocal count
            for part in self._axfr_parts(zone, current, len(head)):
                count += part[0]
                yield part

        yield from self._signed_each(query, _assembled(query.id, head, counted()))
        self.last[zone.name] = ("axfr", count)
        serial = current.effective_serial
        log.info("axfr", zone=zone.name, serial=serial, client=host, records=count)

    def _axfr_parts(
        self, zone: ZoneSettings, current: Snapshot, head_length: int
    ) -> Iterator[tuple[int, bytes]]:
        """Yield the AXFR's message parts: followed from the rendering of this zone and
        serial under way (or just finished and still whole), else from a new one."""
        origin_length = len(_name_wire(dns.name.from_text(zone.name)))
        if head_length != origin_length + 4:  # cannot be: the question names the zone
            self.walks += 1
            yield from _wire_parts(zone, head_length, _axfr_body(current, zone))
            return
        key = (zone.name, current.effective_serial)
        with self._lock:
            rendering = self._renderings.get(key)
            if rendering is None or not rendering.joinable():
                for old in [k for k in self._renderings if k[0] == zone.name]:
                    del self._renderings[old]  # an older serial's: no one new will join it
                rendering = _Rendering(
                    lambda: _wire_parts(zone, head_length, _axfr_body(current, zone)),
                    self.shared_bytes,
                )
                self._renderings[key] = rendering
                self.walks += 1
        sent = 0
        try:
            for part in rendering.follow():
                sent += 1
                yield part
        except _Detached:  # fell too far behind the others: walk again, on its own
            with self._lock:
                self.walks += 1
            for i, part in enumerate(_wire_parts(zone, head_length, _axfr_body(current, zone))):
                if i >= sent:
                    yield part

    # -- IXFR --------------------------------------------------------------------------------
    def _client_serial(self, query: dns.message.Message) -> int | None:
        for rrset in query.authority:
            if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
                return int(rrset[0].serial)
        return None

    def _ixfr(
        self,
        query: dns.message.Message,
        zone: ZoneSettings,
        current: Snapshot,
        old: int,
        host: str,
    ) -> Iterator[bytes]:
        serial = current.effective_serial
        new_soa = soa_record(zone, serial)
        if _not_older(old, serial):
            # RFC 1995 §2: the same or a newer serial than ours gets our SOA alone (newer:
            # a full rebuild may briefly answer a serial below its last overlay's).
            self.sent += 1
            self.last[zone.name] = ("ixfr", 1)
            yield from self._messages(query, zone, iter([new_soa]))
            return
        base = next(
            (s for s in reversed(tuple(self.history)) if s.effective_serial & 0xFFFFFFFF == old),
            None,
        )
        if base is None:  # RFC 1995 §4: history gone, send the whole zone
            log.info("ixfr_as_axfr", zone=zone.name, client_serial=old, serial=serial)
            yield from self._axfr(query, zone, current, host)
            return
        key = (zone.name, base.effective_serial, current.effective_serial)
        changed = (
            None if key in self._diffs else changed_between(base, current, tuple(self.history))
        )
        if key not in self._diffs and _unnamed(changed, zone):
            entries = max(zone_entries(base, zone), zone_entries(current, zone))
            if entries > self.compare_max:  # RFC 1995 §4: cheaper whole than compared
                log.info(
                    "ixfr_as_axfr",
                    zone=zone.name,
                    client_serial=old,
                    serial=serial,
                    reason="a change nothing names, on a zone too big to compare",
                    entries=entries,
                )
                yield from self._axfr(query, zone, current, host)
                return
        self.sent += 1
        deleted, added = self._difference(base, current, zone, changed)
        log.info("ixfr", zone=zone.name, serial=serial, deleted=len(deleted), added=len(added))
        old_soa = soa_record(zone, base.effective_serial)
        body = [new_soa, old_soa, *deleted, new_soa, *added, new_soa]
        self.last[zone.name] = ("ixfr", len(body))
        yield from self._messages(query, zone, iter(body))

    def _difference(
        self, base: Snapshot, current: Snapshot, zone: ZoneSettings, changed: Changed | None
    ) -> tuple[list[Record], list[Record]]:
        """Return (deleted, added) records from *base* to *current*, computed once per pair.

        Only the names above the addresses *changed* names are rendered, old and new, when
        the overlays and bases say which addresses changed; else both whole zones (O(zone):
        the caller sends a big zone whole instead, see :data:`COMPARE_MAX`). Several
        secondaries asking for the same IXFR after a NOTIFY (threads, at once) share one
        computation instead of each paying it.
        """
        key = (zone.name, base.effective_serial, current.effective_serial)
        with self._lock:
            lock = self._diff_locks.setdefault(key, threading.Lock())
        with lock:
            found = self._diffs.get(key)
            if found is None:
                if changed is None:  # it was cached when asked, and dropped since
                    changed = changed_between(base, current, tuple(self.history))
                if changed is None or _unnamed(changed, zone):
                    before = {r for r in records(base, zone) if r.rtype != "SOA"}
                    after = {r for r in records(current, zone) if r.rtype != "SOA"}
                    self.whole_zone_diffs += 1
                else:
                    where = (changed.v4, changed.v6, changed.nets4, changed.nets6)
                    before = records_at(base, zone, *where)
                    after = records_at(current, zone, *where)
                self.rendered += len(before) + len(after)
                found = (sorted(before - after), sorted(after - before))
                with self._lock:
                    self._diffs[key] = found
                    while len(self._diffs) > 4 * len(self.zones):  # the newest few pairs
                        oldest = next(iter(self._diffs))
                        del self._diffs[oldest]
                        self._diff_locks.pop(oldest, None)
            return found

    # -- messages ----------------------------------------------------------------------------
    def _messages(
        self, query: dns.message.Message, zone: ZoneSettings, body: Iterator[Record]
    ) -> Iterator[bytes]:
        """Yield signed (when the query was) messages carrying *body*, each as it is built.

        Every message is signed, the first with the query's MAC and each later one chained
        to the one before (RFC 8945 §5.3.1), as NSD and dnspython verify them.
        """
        messages = _wire_messages(query.id, query.question[0], zone, iter(body))
        yield from self._signed_each(query, messages)

    def _signed_each(
        self, query: dns.message.Message, messages: Iterable[bytes]
    ) -> Iterator[bytes]:
        """Yield *messages*, each signed when the query was: the first with the query's MAC,
        each later one chained to the one before (RFC 8945 §5.3.1)."""
        signer = query.keyname if query.had_tsig else None  # verified by answer()
        if signer is None:
            yield from messages
            return
        key = self.settings.keyring[signer]
        ctx: Any = None
        for unsigned in messages:
            signed, ctx = _signed(unsigned, query, key, ctx)
            yield signed

    def _refuse(self, query: dns.message.Message, why: str, host: str) -> list[bytes]:
        self.refused += 1
        log.info("transfer_refused", client=host, reason=why)
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.REFUSED)
        return [response.to_wire()]

    def _tsig_error(self, packet: bytes, error: dns.rcode.Rcode, host: str) -> list[bytes]:
        """Answer NOTAUTH with a TSIG carrying *error* (RFC 8945 §5.2), as clients expect."""
        self.refused += 1
        log.info("transfer_refused", client=host, reason=f"TSIG {error.name}")
        try:
            query = dns.message.from_wire(packet, keyring=False)
        except dns.exception.DNSException:
            return self._error(packet, dns.rcode.NOTAUTH, "bad TSIG", host)
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.NOTAUTH)
        # The client's key is unknown or did not verify: the MAC cannot be ours to give, and
        # the client reads the error before any MAC (dns.tsig.validate, BIND, NSD).
        placeholder = dns.tsig.Key(str(query.keyname), b"\0" * 32, dns.tsig.HMAC_SHA256)
        response.use_tsig(placeholder, tsig_error=int(error))
        return [response.to_wire()]

    def _error(self, packet: bytes, rcode: dns.rcode.Rcode, why: str, host: str) -> list[bytes]:
        self.refused += 1
        log.info("transfer_refused", client=host, reason=why)
        qid = packet[:2] if len(packet) >= 2 else b"\0\0"
        flags = 0x8000 | (int(rcode) & 0xF)
        return [qid + struct.pack(">HHHHH", flags, 0, 0, 0, 0)]


class _Detached(Exception):
    """A follower fell more than the rendering's bound behind the first: it walks alone."""


class _Rendering:
    """The AXFR message parts of one zone and serial, rendered once for every transfer that
    follows them (several secondaries after a NOTIFY, or all of them at start-up).

    Whoever needs a part not yet rendered renders the next one (outside the lock, so the
    others keep sending theirs), and each follower reads the parts in order. Parts are kept
    while they total under *limit* bytes, so a transfer starting while the first part is
    still held joins at the start; past the bound, parts every follower has read are dropped
    and a follower so slow that the rest would exceed the bound is detached (it renders its
    own, skipping what it sent). Memory: at most *limit* plus one message per rendering, and
    none once its followers finish, unless the zone fitted whole (then it serves later
    transfers of the serial too, until the next serial).
    """

    def __init__(self, make: Callable[[], Iterator[tuple[int, bytes]]], limit: int) -> None:
        self._make: Callable[[], Iterator[tuple[int, bytes]]] | None = make
        self._parts: Iterator[tuple[int, bytes]] | None = None
        self._limit = limit
        self._held: list[tuple[int, bytes]] = []
        self._base = 0  # index of _held[0] among all parts
        self._bytes = 0
        self._done = False
        self._rendering = False  # a follower is rendering the next part
        self._failed: BaseException | None = None
        self._next: dict[int, int] = {}  # follower -> index of the next part it reads
        self._detached: set[int] = set()
        self._followers = 0
        self._closed = False  # no follower left and not whole: everything dropped
        self._cond = threading.Condition()

    def joinable(self) -> bool:
        """True while a new transfer can follow from the first part."""
        with self._cond:
            return self._base == 0 and self._failed is None and not self._closed

    def follow(self) -> Iterator[tuple[int, bytes]]:
        """Yield every part in order (raises :class:`_Detached` if dropped behind)."""
        cond = self._cond
        with cond:
            if self._base or self._closed:  # the first part went since joinable() said yes
                raise _Detached
            me = self._followers
            self._followers += 1
            self._next[me] = 0
        try:
            while True:
                part: tuple[int, bytes] | None
                with cond:
                    while True:
                        if me in self._detached:
                            raise _Detached
                        i = self._next[me]
                        if i - self._base < len(self._held):
                            part = self._held[i - self._base]
                            self._next[me] = i + 1
                            break
                        if self._failed is not None:
                            raise self._failed
                        if self._done:
                            return
                        if not self._rendering:
                            self._rendering = True
                            part = None
                            break
                        cond.wait()
                if part is None:
                    self._render()
                    continue
                yield part
        finally:
            with cond:
                self._next.pop(me, None)
                self._detached.discard(me)
                if self._next or (self._done and not self._base and self._failed is None):
                    self._trim()
                else:  # no one left, and no one can join a part-held rendering: free it
                    self._closed = True
                    self._held.clear()
                    self._bytes = 0
                    self._parts = self._make = None

    def _render(self) -> None:
        """Render the next part and hold it (called by one follower at a time)."""
        try:
            if self._parts is None and self._make is not None:
                self._parts = self._make()
            part = None if self._parts is None else next(self._parts, None)
        except BaseException as exc:
            with self._cond:
                self._failed = exc
                self._rendering = False
                self._cond.notify_all()
            raise
        with self._cond:
            self._rendering = False
            if part is None:
                self._done = True
                self._parts = self._make = None  # the snapshot is no longer needed
            else:
                self._held.append(part)
                self._bytes += len(part[1])
                self._trim()
            self._cond.notify_all()

    def _trim(self) -> None:
        """Past the bound, drop the parts every follower has read, then the slowest
        followers, until the rest fits (lock held)."""
        while self._bytes > self._limit and self._held:
            reading = [i for f, i in self._next.items() if f not in self._detached]
            first = min(reading, default=self._base + len(self._held))
            if first > self._base:
                _, payload = self._held.pop(0)
                self._bytes -= len(payload)
                self._base += 1
                continue
            slowest = [f for f, i in self._next.items() if i == first and f not in self._detached]
            if len(slowest) == len(reading):
                return  # everyone is at the oldest part: nothing to drop yet
            self._detached.update(slowest)
            self._cond.notify_all()


def _unnamed(changed: Changed | None, zone: ZoneSettings) -> bool:
    """True when *changed* cannot say which records of *zone* moved (nothing names the change,
    or a domain changed in a zone holding domains): only both whole zones can tell."""
    return changed is None or (bool(changed.domains) and zone.kind != "ip")


def _not_older(serial: int, ours: int) -> bool:
    """True when *serial* is the same as or newer than *ours* (RFC 1982 serial arithmetic)."""
    return (serial - ours) % (1 << 32) < (1 << 31)


def _axfr_body(snapshot: Snapshot, zone: ZoneSettings) -> Iterator[Record]:
    """Yield the AXFR sequence: SOA, every record, SOA again (RFC 5936 §2.2)."""
    soa = soa_record(zone, snapshot.effective_serial)
    yield soa
    for rec in records(snapshot, zone):
        if rec.rtype != "SOA":
            yield rec
    yield soa


_TYPES: Final = {"A": 1, "NS": 2, "SOA": 6, "TXT": 16}
_HEADER: Final = struct.Struct(">HHHHHH")
_FIXED: Final = struct.Struct(">HHIH")  # type, class, TTL, rdata length
_TSIG: Final[Any] = dns.rdtypes.ANY.TSIG.TSIG  # untyped in dnspython 2.9: used through Any
_SIGN: Final[Any] = dns.tsig.sign
_LENGTH: Final = tuple(bytes((n,)) for n in range(256))  # a label's or string's length byte
_RDATA_CACHE: Final = 4096  # rdata other than TXT remembered per transfer (codes, NS, SOA)


def _wire_messages(
    qid: int, question: dns.rrset.RRset, zone: ZoneSettings, body: Iterator[Record]
) -> Iterator[bytes]:
    """Yield unsigned messages carrying *body*, each holding about MESSAGE_BUDGET bytes."""
    head = _name_wire(question.name) + struct.pack(">HH", question.rdtype, question.rdclass)
    return _assembled(qid, head, _wire_parts(zone, len(head), body))


def _assembled(qid: int, head: bytes, parts: Iterable[tuple[int, bytes]]) -> Iterator[bytes]:
    """Yield the messages of *parts* (record count, records' wire form): a header with the
    query's id each, the question *head* in the first (RFC 5936 §2.2.1)."""
    first = True
    for count, payload in parts:
        if first:
            yield _HEADER.pack(qid, 0x8400, 1, count, 0, 0) + head + payload
            first = False
        else:
            yield _HEADER.pack(qid, 0x8400, 0, count, 0, 0) + payload


def _wire_parts(
    zone: ZoneSettings, head_length: int, body: Iterator[Record]
) -> Iterator[tuple[int, bytes]]:
    """Yield (record count, records' wire form) per message carrying *body*, each holding
    about MESSAGE_BUDGET bytes; the first follows a question of *head_length* bytes.

    The records go straight to wire form: dnspython's path (text to rdata objects, grouped
    in RRsets, then to wire) cost ~100 µs a record, 27.7 s of CPU for a 100k-host AXFR
    (docs/benchmarks.md, "AXFR (session 6, round 2)"). Names are compressed simply: each
    owner is its own labels and a pointer to the zone's name (the question's in the first
    message, else the first owner's suffix), or one pointer to the previous owner when it
    repeats; so no pointer chain is longer than two hops (careful clients refuse long ones)
    and every pointer target lies below MESSAGE_BUDGET (< 16 KiB, what a pointer reaches).
    Nothing here depends on the query but the question's length: the parts of one zone and
    serial serve every secondary (:class:`_Rendering`).
    """
    origin = dns.name.from_text(zone.name)
    origin_wire = _name_wire(origin)
    ttl = zone.ttl
    cache: dict[tuple[str, str], bytes] = {}
    pack_fixed = _FIXED.pack
    first = True
    more = True
    while more:
        parts: list[bytes] = []
        pos = 12 + head_length if first else 12
        origin_at = 12 if first else 0  # where the zone's name is written (0: not yet)
        count = 0
        last_owner: str | None = None
        owner_at = 0
        run_owner: str | None = None
        run_type = run_text = ""
        seen: set[str] | None = None  # the run's rdata, once it has a second record
        more = False
        for rec in body:
            owner, rtype, text = rec.owner, rec.rtype, rec.rdata
            if owner != run_owner or rtype != run_type or rtype == "SOA":  # SOAs mark IXFR's
                run_owner, run_type, run_text, seen = owner, rtype, text, None  # parts: all go
            else:
                if seen is None:
                    seen = {run_text}
                if text in seen:
                    continue  # an RRset holds each rdata once (RFC 2181 §5)
                seen.add(text)
            rdtype = _TYPES.get(rtype) or dns.rdatatype.from_text(rtype)
            if rdtype == 16 and "\\" not in text:  # plain TXT: printable, no quote inside
                inner = text[1:-1]
                if '" "' not in inner and len(inner) < 256:  # one string: most TXT
                    rdata = _LENGTH[len(inner)] + inner.encode("ascii")
                else:
                    rdata = b"".join(
                        _LENGTH[len(raw)] + raw
                        for raw in (t.encode("ascii") for t in inner.split('" "'))
                    )
            else:
                found = cache.get((rtype, text))
                if found is None:
                    if len(cache) >= _RDATA_CACHE:
                        cache.clear()
                    found = cache[(rtype, text)] = _rdata_wire(rdtype, text, origin)
                rdata = found
            if owner == last_owner:
                name = (0xC000 | owner_at).to_bytes(2, "big")
            else:
                labels = _labels(owner, origin, len(origin_wire)) if owner else b""
                if origin_at:
                    name = labels + (0xC000 | origin_at).to_bytes(2, "big")
                else:
                    name = labels + origin_wire
                    origin_at = pos + len(labels)
                last_owner, owner_at = owner, pos
            parts.append(name)
            parts.append(pack_fixed(rdtype, 1, ttl, len(rdata)))
            parts.append(rdata)
            pos += len(name) + 10 + len(rdata)
            count += 1
            if pos >= MESSAGE_BUDGET:
                more = True
                break
        if count or first:
            yield count, b"".join(parts)
        first = False


def _labels(owner: str, origin: dns.name.Name, origin_length: int) -> bytes:
    """Return the wire labels of *owner* (relative to the zone), without the zone's."""
    if "\\" not in owner and owner.isascii() and len(owner) + origin_length < 255:
        labels = owner.encode("ascii").split(b".")
        if b"" not in labels and max(map(len, labels)) < 64:
            return b"".join([_LENGTH[len(label)] + label for label in labels])
    # Escapes, or a bad label: dnspython reads the escapes, or says what is wrong.
    name = dns.name.from_text(owner, origin).relativize(origin)
    return b"".join(len(label).to_bytes(1, "big") + label for label in name.labels)


def _rdata_wire(rdtype: int, text: str, origin: dns.name.Name) -> bytes:
    """Return the wire form of rdata *text* (names written in full: no compression)."""
    kind = dns.rdatatype.RdataType.make(rdtype)
    rdata = dns.rdata.from_text(dns.rdataclass.IN, kind, text, origin=origin)
    return cast(bytes, rdata.to_wire(origin=origin))


def _name_wire(name: dns.name.Name) -> bytes:
    """Return the uncompressed wire form of the absolute *name*."""
    return b"".join(len(label).to_bytes(1, "big") + label for label in name.labels)


def _signed(
    wire: bytes, query: dns.message.Message, key: dns.tsig.Key, ctx: Any
) -> tuple[bytes, Any]:
    """Return *wire* with its TSIG record (hmac over it and the previous MAC or the query's),
    and the context that signs the next message (RFC 8945 §5.3.1)."""
    blank = _TSIG(
        dns.rdataclass.ANY, dns.rdatatype.TSIG, key.algorithm, 0, 300, b"", query.id, 0, b""
    )
    tsig, ctx = _SIGN(wire, key, blank, int(time.time()), query.mac, ctx, True)
    rdata = tsig.to_wire()
    record = _name_wire(key.name) + struct.pack(">HHIH", 250, 255, 0, len(rdata)) + rdata
    return wire[:10] + b"\0\1" + wire[12:] + record, ctx


def _inside(host: str, net: IPv4Network | IPv6Network) -> bool:
    try:
        return ip_network(host).subnet_of(net)  # type: ignore[arg-type]  # other family: False
    except (ValueError, TypeError):
        return False


def notify_messages(config: Config, serial: int) -> list[dns.message.Message]:
    """Return one NOTIFY per zone (RFC 1996 §3.7), TSIG-signed with the first key if any."""
    settings = transfer_settings(config)
    key = next(iter(settings.keyring.values()), None)
    out: list[dns.message.Message] = []
    for zone in zone_settings(config):
        message = dns.message.make_query(zone.name, dns.rdatatype.SOA)
        message.set_opcode(dns.opcode.NOTIFY)
        message.flags = (message.flags & ~dns.flags.RD) | dns.flags.AA
        origin = dns.name.from_text(zone.name)
        soa = soa_record(zone, serial)
        message.answer.append(dns.rrset.from_text(origin, zone.ttl, "IN", "SOA", soa.rdata))
        if key is not None:
            message.use_tsig(key)
        out.append(message)
    for name, source in rpz_sources(config, settings).items():
        current = source.current()
        if current is None:
            continue
        message = dns.message.make_query(name, dns.rdatatype.SOA)
        message.set_opcode(dns.opcode.NOTIFY)
        message.flags = (message.flags & ~dns.flags.RD) | dns.flags.AA
        message.answer.append(dns.rrset.from_text(name, 300, "IN", "SOA", current[1].rdata))
        if key is not None:
            message.use_tsig(key)
        out.append(message)
    return out


async def send_notify(config: Config, serial: int, *, tries: int = 3) -> int:
    """NOTIFY every ``[transfer] notify`` secondary of *serial*; return the answers received.

    RFC 1996 §3.6: retry until answered; here *tries* times, 2 s apart, then log and go on
    (the secondary still polls at the SOA refresh interval).
    """
    import asyncio

    import dns.asyncquery

    targets = transfer_settings(config).notify
    answered = 0
    for host, port in targets:
        for message in notify_messages(config, serial):
            for attempt in range(tries):
                try:
                    await dns.asyncquery.udp(message, host, port=port, timeout=2)
                    answered += 1
                    break
                except (TimeoutError, OSError, dns.exception.DNSException) as exc:
                    if attempt + 1 == tries:
                        log.warning(
                            "notify_failed", target=f"{host}:{port}", serial=serial, error=str(exc)
                        )
                    await asyncio.sleep(0)
    if targets:
        log.info("notified", serial=serial, targets=len(targets), answered=answered)
    return answered
