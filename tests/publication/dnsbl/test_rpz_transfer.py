"""RPZ by zone transfer: the real Unbound takes our policy zone with ``rpz: primary:``."""

from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from reputable.config import load_config
from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import Batch, Listing
from reputable.publication.dnsbl.transfer import Transfers, send_notify
from reputable.publication.dnsbl.worker import Worker
from reputable.publication.sinks import refresh, sinks_of
from reputable.publication.snapshot.publish import publish
from reputable.testing import MemoryStore, free_port, write_config
from tests.publication.exports.resolvers import need, nsd, running, wait_dns

ORIGIN = "rpz.reputable.test"
NOW = datetime.now(UTC)


def _listing(subject: str) -> Listing:
    return Listing(
        subject=parse_subject(subject),
        cause=Cause.MALWARE_HOST,
        reason="kit",
        source="t",
        listed_at=NOW,
    )


def _ask(port: int, name: str, rdtype: str = "A") -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return dns.query.udp(query, "127.0.0.1", port=port, timeout=3)


def _until(port: int, name: str, rcode: int, seconds: float) -> float:
    """Return seconds until Unbound on *port* answers *name* with *rcode* (fresh each time)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if _ask(port, name).rcode() == rcode:
                return time.monotonic() - started
        except (dns.exception.Timeout, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{name} never answered {dns.rcode.to_text(rcode)} within {seconds} s")


def _unbound_conf(folder: Path, port: int, primary: int, upstream: int) -> Path:
    conf = folder / "unbound.conf"
    conf.write_text(
        f"""server:
  interface: 127.0.0.1@{port}
  port: {port}
  do-not-query-localhost: no
  outgoing-interface: 127.0.0.1
  username: ""
  chroot: ""
  directory: "{folder}"
  pidfile: "{folder}/unbound.pid"
  use-syslog: no
  logfile: "{folder}/unbound.log"
  module-config: "respip iterator"
  access-control: 127.0.0.0/8 allow
  local-zone: "test." nodefault
  num-threads: 1
  so-reuseport: no
  verbosity: 1
  cache-max-ttl: 1
  cache-max-negative-ttl: 1
remote-control:
  control-enable: no
stub-zone:
  name: "example.test"
  stub-addr: 127.0.0.1@{upstream}
rpz:
  name: "{ORIGIN}"
  primary: 127.0.0.1@{primary}
  allow-notify: 127.0.0.1
  zonefile: "{folder}/rpz.zone"
  rpz-log: yes
"""
    )
    return conf


def test_unbound_takes_the_policy_zone_by_transfer_and_follows_a_change(tmp_path: Path) -> None:
    """Listed NXDOMAIN, unlisted its real answer; a new listing arrives by NOTIFY + IXFR."""
    need("unbound", "unbound")
    port, unbound_port = free_port(), free_port()
    extra = (
        '[transfer]\nallow = ["127.0.0.1"]\nrpz = true\nnotify = ["127.0.0.1:'
        f'{unbound_port}"]\n'
        f'[[sinks]]\nkind = "rpz"\npath = "{tmp_path}/policy.rpz"\norigin = "{ORIGIN}"\n'
    )
    config = load_config(write_config(tmp_path, dns_port=port, extra=extra))
    store = MemoryStore()
    store.apply(Batch(listings=(_listing("bad.example.test"),)), actor="t", action="t")
    publish(store, config, NOW)
    sinks = sinks_of(config)
    refresh(sinks, store, NOW)
    worker = Worker(config, 0)
    worker.start()
    try:
        with nsd(tmp_path / "nsd") as upstream:
            folder = tmp_path / "unbound"
            folder.mkdir()
            conf = _unbound_conf(folder, unbound_port, port, upstream)
            check = subprocess.run(
                ["unbound-checkconf", str(conf)], capture_output=True, text=True, check=False
            )
            assert check.returncode == 0, check.stdout + check.stderr
            with running(["unbound", "-d", "-c", str(conf)], folder / "unbound.out"):
                wait_dns(unbound_port, "good.example.test")
                # Its first transfer follows its start: seconds on a loaded machine.
                _until(unbound_port, "bad.example.test", dns.rcode.NXDOMAIN, 60)
                good = _ask(unbound_port, "good.example.test")
                assert good.rcode() == dns.rcode.NOERROR
                assert [r.to_text() for rrset in good.answer for r in rrset] == ["192.0.2.80"]
                sub = _ask(unbound_port, "www.bad.example.test")
                assert sub.rcode() == dns.rcode.NXDOMAIN  # *.bad.example.test CNAME .
                shady = _ask(unbound_port, "shady.example.test")
                assert shady.rcode() == dns.rcode.NOERROR

                store.apply(
                    Batch(listings=(_listing("shady.example.test"),)), actor="t", action="t"
                )
                refresh(sinks, store, NOW)
                asyncio.run(send_notify(config, store.serial()))
                seconds = _until(unbound_port, "shady.example.test", dns.rcode.NXDOMAIN, 15)
                assert seconds < 15
                transfers = worker.transfers
                assert isinstance(transfers, Transfers)
                kind, records = transfers.last[ORIGIN]
                assert kind == "ixfr" and records <= 6, (kind, records)
                good = _ask(unbound_port, "good.example.test")
                assert [r.to_text() for rrset in good.answer for r in rrset] == ["192.0.2.80"]
            log = (folder / "unbound.log").read_text(errors="replace")
            assert "rpz" in log.lower()
    finally:
        worker.stop()


def test_rpz_transfer_needs_tsig_or_the_acl(tmp_path: Path) -> None:
    """Outside transfer.allow and without TSIG: REFUSED, as for the DNSBL zones."""
    port = free_port()
    extra = (
        '[transfer]\nallow = ["127.0.0.9"]\nrpz = true\n'
        f'[[sinks]]\nkind = "rpz"\npath = "{tmp_path}/policy.rpz"\norigin = "{ORIGIN}"\n'
    )
    config = load_config(write_config(tmp_path, dns_port=port, extra=extra))
    store = MemoryStore()
    store.apply(Batch(listings=(_listing("bad.example.test"),)), actor="t", action="t")
    publish(store, config, NOW)
    refresh(sinks_of(config), store, NOW)
    transfers = Transfers(config)
    query = dns.message.make_query(ORIGIN, dns.rdatatype.AXFR)
    refused = dns.message.from_wire(transfers.answer(query.to_wire(), "127.0.0.1")[0])
    assert refused.rcode() == dns.rcode.REFUSED
    allowed = [dns.message.from_wire(m) for m in transfers.answer(query.to_wire(), "127.0.0.9")]
    names = {rrset.name.to_text() for m in allowed for rrset in m.answer}
    assert f"bad.example.test.{ORIGIN}." in names
    soa = dns.message.from_wire(
        transfers.soa_reply(dns.message.make_query(ORIGIN, "SOA").to_wire()) or b""
    )
    assert soa.answer[0][0].serial == store.serial()


@pytest.mark.parametrize("value", ['"yes"', "1"])
def test_a_bad_rpz_setting_says_what_to_write(tmp_path: Path, value: str) -> None:
    """transfer.rpz must be true or false; true needs an rpz sink."""
    from reputable.core.errors import ConfigError

    extra = f'[transfer]\nallow = ["127.0.0.1"]\nrpz = {value}\n'
    with pytest.raises(ConfigError, match=r"\[transfer\] rpz"):
        load_config(write_config(tmp_path, dns_port=free_port(), extra=extra))
    extra = '[transfer]\nallow = ["127.0.0.1"]\nrpz = true\n'
    config = load_config(write_config(tmp_path, dns_port=free_port(), extra=extra))
    with pytest.raises(ConfigError, match=r"no \[\[sinks\]\]"):
        Transfers(config)
