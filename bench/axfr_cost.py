"""AXFR of a big zone: CPU per transfer, the first message's latency, memory, and a check.

    python bench/axfr_cost.py --store /tmp/bulk/b1m/store [--tsig] [--verify]

Uses the store folder of ``bench/bulk_pipeline.py`` (its snapshot, built by ``snapshot
build``; nothing is written there): loads the snapshot in a zone-transfer answerer
(``Transfers``, as a DNS worker does) and answers one AXFR of the IP zone, taking the
messages one by one as the worker's TCP path does. Prints the CPU seconds (``time.
process_time``: this process, one thread) and wall seconds until the first message and for
the whole transfer, the messages, records (their headers' answer counts) and bytes, and the
peak RSS. ``--tsig`` signs the query (each message is then signed, RFC 8945 §5.3.1);
``--verify`` then parses every message with dnspython (validating the TSIG chain when
signed), outside the timed part, and checks the SOA at both ends. Runs on older code too
(``PYTHONPATH=old/src``), whose ``answer`` returns every message at once.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import resource
import shutil
import struct
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import dns.message
import dns.rdatatype
import dns.tsigkeyring

from reputable.config import load_config
from reputable.publication.dnsbl.transfer import Transfers
from reputable.publication.snapshot.overlay import overlay_path
from reputable.publication.snapshot.view import Snapshot

ZONE = "bl.reputable.test"
SECRET = base64.b64encode(b"reputable-axfr-bench-key-32bytes").decode()


def loadavg() -> str:
    """Return the 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    """Answer one AXFR of the IP zone and print its cost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--tsig", action="store_true")
    parser.add_argument("--verify", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="axfr-bench-"))
    toml = work / "reputable.toml"
    text = (args.store / "reputable.toml").read_text()
    text = text.replace('data_dir = "."', f'data_dir = "{args.store.resolve()}"')
    toml.write_text(
        text + f'\n[transfer]\nallow = ["127.0.0.1"]\n[transfer.keys]\nxfrkey = "{SECRET}"\n'
    )
    config = load_config(toml)
    snapshot = Snapshot(config.snapshot_path)
    attach = getattr(snapshot, "attach_overlay", None)
    if attach is not None:
        attach(overlay_path(config.snapshot_path))
    transfers = Transfers(config)
    transfers.remember(snapshot)
    query = dns.message.make_query(ZONE, dns.rdatatype.AXFR)
    keyring = dns.tsigkeyring.from_text({"xfrkey.": ("hmac-sha256", SECRET)})
    if args.tsig:
        query.use_tsig(keyring, keyname="xfrkey.", algorithm="hmac-sha256")
    packet = query.to_wire()
    print(f"load before: {loadavg()}", flush=True)
    stream = getattr(transfers, "stream", transfers.answer)
    wall, cpu = time.perf_counter(), time.process_time()
    messages: Iterable[bytes] = iter(stream(packet, "127.0.0.1"))
    first = next(iter(messages))
    first_cpu, first_wall = time.process_time() - cpu, time.perf_counter() - wall
    sent: list[bytes] = []  # kept for --verify only: the worker holds one at a time
    count = size = total = 0
    for message in itertools.chain([first], messages):  # one by one, as the worker takes them
        total += 1
        count += struct.unpack_from(">H", message, 6)[0]
        size += len(message)
        if args.verify:
            sent.append(message)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"first message: {first_cpu:.3f} s CPU, {first_wall:.3f} s wall\n"
        f"AXFR: {cpu:.2f} s CPU, {wall:.2f} s wall; {total} messages, {count} records,"
        f" {size:,} bytes; peak RSS {rss} MB; tsig={args.tsig}",
        flush=True,
    )
    print(f"load after: {loadavg()}", flush=True)
    if args.verify:
        verify(sent, query, keyring if args.tsig else None)
    shutil.rmtree(work, ignore_errors=True)


def verify(sent: list[bytes], query: dns.message.Message, keyring: object) -> None:
    """Parse every message as a secondary would (the TSIG chain too) and check the SOAs."""
    started = time.process_time()
    ctx = None
    request_mac = query.mac if keyring is not None else b""
    records = []
    for i, wire in enumerate(sent):
        message = dns.message.from_wire(
            wire,
            keyring=keyring,
            request_mac=request_mac,
            xfr=True,
            origin=None,
            tsig_ctx=ctx,
            multi=True,
            one_rr_per_rrset=True,
        )
        if keyring is not None:
            ctx, request_mac = message.tsig_ctx, message.mac
        if i == 0 and not message.question:
            raise SystemExit("the first message lacks the question")
        records.extend(message.answer)
    soa = dns.rdatatype.SOA
    if records[0].rdtype != soa or records[-1].rdtype != soa or records[0] != records[-1]:
        raise SystemExit("the transfer does not start and end with the same SOA")
    print(
        f"verified: {len(records)} records parsed by dnspython"
        f" ({time.process_time() - started:.1f} s CPU)"
    )


if __name__ == "__main__":
    main()
