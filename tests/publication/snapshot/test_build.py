"""Snapshot build + lookup agree with a brute-force reading of the listings."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address, ip_network
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.config import DEFAULT_TOML, Config, parse_config
from reputable.core.address import Domain, parse_subject
from reputable.core.cause import LISTING_CAUSES, Cause
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.publication.snapshot.build import txt_template
from reputable.publication.snapshot.publish import publish, stale
from reputable.publication.snapshot.view import Snapshot
from reputable.testing import MemoryStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
CAUSES = [Cause.SPAM, Cause.COMPROMISED, Cause.MANUAL]
REASONS = ["trap", "botnet", "operator"]


def config_in(directory: Path) -> Config:
    """Return the default config with its snapshot in *directory*."""
    return parse_config(DEFAULT_TOML, directory / "reputable.toml")


def snapshot_of(store: MemoryStore, directory: Path, now: datetime = NOW) -> Snapshot:
    """Publish *store* into *directory* and map the result."""
    config = config_in(directory)
    publish(store, config, now)
    return Snapshot(config.snapshot_path)


def answers(snap: Snapshot, atoms: tuple[int, ...]) -> dict[int, bytes]:
    """Return {code: TXT template} for *atoms*."""
    return {int(snap.atom_code[a]): snap.template(a) for a in atoms}


def expected(
    config: Config, listings: list[Listing], allows: list[AllowEntry], subject: object
) -> dict[int, bytes]:
    """Brute force: per code, the most specific, then most recent, then largest-TXT listing."""
    if any(subject in a.subject for a in allows):  # type: ignore[operator]
        return {}
    best: dict[int, tuple[int, float, str]] = {}
    for item in listings:
        if subject not in item.subject:  # type: ignore[operator]
            continue
        code = int(config.ip_zone.codes[item.cause])
        template = txt_template(item.reason, config.ip_zone.lookup_url)
        key = (item.subject.prefixlen, item.listed_at.timestamp(), template)  # type: ignore[union-attr]
        if code not in best or key > best[code]:
            best[code] = key
    return {code: key[2].encode() for code, key in best.items()}


def v4_listings() -> st.SearchStrategy[list[Listing]]:
    """Overlapping IPv4 listings inside 10.0.0.0/24."""

    def make(host: int, plen: int, cause: Cause, reason: str, minute: int) -> Listing:
        net = ip_network(f"10.0.0.{host}/{plen}", strict=False)
        return Listing(
            subject=net,
            cause=cause,
            reason=reason,
            source=f"s{minute % 2}",
            listed_at=NOW - timedelta(minutes=minute),
        )

    return st.lists(
        st.builds(
            make,
            st.integers(0, 255),
            st.integers(24, 32),
            st.sampled_from(CAUSES),
            st.sampled_from(REASONS),
            st.integers(0, 3),
        ),
        max_size=25,
    )


def v4_allows() -> st.SearchStrategy[list[AllowEntry]]:
    """Allowlist entries inside 10.0.0.0/24."""

    def make(host: int, plen: int) -> AllowEntry:
        return AllowEntry(
            subject=ip_network(f"10.0.0.{host}/{plen}", strict=False),
            note="ok",
            source="t",
            created_at=NOW,
        )

    return st.lists(st.builds(make, st.integers(0, 255), st.integers(28, 32)), max_size=4)


@settings(max_examples=60, deadline=None)
@given(v4_listings(), v4_allows())
def test_ipv4_lookup_matches_brute_force(listings: list[Listing], allows: list[AllowEntry]) -> None:
    """Every address of the /24 answers exactly the codes and TXT the rules give."""
    with tempfile.TemporaryDirectory() as tmp:
        store = MemoryStore()
        store.apply(Batch(listings=tuple(listings), allows=tuple(allows)), actor="t", action="t")
        snap = snapshot_of(store, Path(tmp))
        config = config_in(Path(tmp))
        # The store keeps one row per (subject, cause, source): the last write wins.
        rows = list(store.listings())
        for host in range(256):
            address = IPv4Address(f"10.0.0.{host}")
            got = answers(snap, snap.atoms(snap.v4_value(int(address))))
            assert got == expected(config, rows, allows, address), str(address)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 255), st.integers(120, 128), st.sampled_from(CAUSES)), max_size=15
    ),
    st.lists(st.integers(0, 255), max_size=3),
)
def test_ipv6_lookup_matches_brute_force(
    specs: list[tuple[int, int, Cause]], holes: list[int]
) -> None:
    """IPv6 prefixes and exclusions behave like IPv4 ranges."""
    listings = [
        Listing(
            subject=ip_network(f"2001:db8::{h:x}/{p}", strict=False),
            cause=c,
            reason=c.value,
            source="t",
            listed_at=NOW,
        )
        for h, p, c in specs
    ]
    allows = [
        AllowEntry(
            subject=ip_network(f"2001:db8::{h:x}/128"), note="ok", source="t", created_at=NOW
        )
        for h in holes
    ]
    with tempfile.TemporaryDirectory() as tmp:
        store = MemoryStore()
        store.apply(Batch(listings=tuple(listings), allows=tuple(allows)), actor="t", action="t")
        snap = snapshot_of(store, Path(tmp))
        config = config_in(Path(tmp))
        rows = list(store.listings())
        for host in range(256):
            address = IPv6Address(f"2001:db8::{host:x}")
            got = answers(snap, snap.atoms(snap.v6_value(address.packed)))
            assert got == expected(config, rows, allows, address), str(address)


def test_test_points_and_never_listed(tmp_path: Path) -> None:
    """127.0.0.2 is listed and 127.0.0.1 is not, even inside a listed range."""
    store = MemoryStore()
    store.apply(
        Batch(
            listings=(
                Listing(
                    subject=ip_network("127.0.0.0/30"),
                    cause=Cause.MANUAL,
                    reason="x",
                    source="t",
                    listed_at=NOW,
                ),
            )
        ),
        actor="t",
        action="t",
    )
    snap = snapshot_of(store, tmp_path)
    assert snap.atoms(snap.v4_value(0x7F000001)) == ()
    codes = {int(snap.atom_code[a]) for a in snap.atoms(snap.v4_value(0x7F000002))}
    assert codes == {0x7F000002, 0x7F00000A}
    assert {int(snap.atom_code[a]) for a in snap.domain_atoms("test")} == {0x7F000102}
    assert snap.domain_atoms("invalid") == ()


def test_allowlist_zone_never_answers_127_0_0_1(tmp_path: Path) -> None:
    """The allowlist zone is a DNSxL too: 127.0.0.2 listed, 127.0.0.1 never, even allowlisted."""
    store = MemoryStore()
    store.apply(
        Batch(
            allows=(
                AllowEntry(subject=ip_network("127.0.0.0/8"), note="", source="t", created_at=NOW),
                AllowEntry(
                    subject=ip_network("::ffff:127.0.0.0/104"), note="", source="t", created_at=NOW
                ),
            )
        ),
        actor="t",
        action="t",
    )
    snap = snapshot_of(store, tmp_path)
    assert snap.atoms(snap.wl_v4_value(0x7F000001)) == ()
    assert snap.atoms(snap.wl_v4_value(0x7F000002)) != ()
    assert snap.atoms(snap.wl_v4_value(0x7F000003)) != ()
    never6 = int(IPv6Address("::ffff:127.0.0.1")).to_bytes(16, "big")
    assert snap.atoms(snap.wl_v6_value(never6)) == ()


def test_domains_cover_subdomains_and_allow_wins(tmp_path: Path) -> None:
    """A listed domain covers its subdomains; an allowlisted subdomain or parent is never listed."""

    def listing(name: str, cause: Cause) -> Listing:
        return Listing(
            subject=parse_subject(name), cause=cause, reason=name, source="t", listed_at=NOW
        )

    store = MemoryStore()
    store.apply(
        Batch(
            listings=(
                listing("evil.example", Cause.MALWARE_HOST),
                listing("spam.evil.example", Cause.SPAM),
                listing("bad.good.test2", Cause.SPAM),
            ),
            allows=(
                AllowEntry(subject=Domain("ok.evil.example"), note="n", source="t", created_at=NOW),
                AllowEntry(subject=Domain("good.test2"), note="n", source="t", created_at=NOW),
            ),
        ),
        actor="t",
        action="t",
    )
    snap = snapshot_of(store, tmp_path)
    codes = lambda name: {int(snap.atom_code[a]) for a in snap.domain_atoms(name)}  # noqa: E731
    assert codes("www.evil.example") == {0x7F000107}
    assert codes("a.spam.evil.example") == {0x7F000107, 0x7F000102}
    assert codes("x.ok.evil.example") == set()
    assert codes("bad.good.test2") == set()
    assert codes("example") == set()
    assert snap.domain_has_children("example")
    assert not snap.domain_has_children("other")


def test_expiry_marks_snapshot_stale(tmp_path: Path) -> None:
    """An expired listing drops out and the snapshot knows when to rebuild."""
    store = MemoryStore()
    store.apply(
        Batch(
            listings=(
                Listing(
                    subject=parse_subject("198.51.100.7"),
                    cause=Cause.SPAM,
                    reason="x",
                    source="t",
                    listed_at=NOW,
                    expires_at=NOW + timedelta(hours=1),
                ),
            )
        ),
        actor="t",
        action="t",
    )
    config = config_in(tmp_path)
    publish(store, config, NOW)
    snap = Snapshot(config.snapshot_path)
    assert snap.atoms(snap.v4_value(int(IPv4Address("198.51.100.7"))))
    assert snap.next_expiry == (NOW + timedelta(hours=1)).timestamp()
    from reputable.publication.snapshot.publish import fingerprint

    digest = fingerprint(config)
    assert not stale(config.snapshot_path, serial=store.serial(), digest=digest, now=NOW)
    later = NOW + timedelta(hours=2)
    assert stale(config.snapshot_path, serial=store.serial(), digest=digest, now=later)
    publish(store, config, later)
    snap = Snapshot(config.snapshot_path)
    assert snap.atoms(snap.v4_value(int(IPv4Address("198.51.100.7")))) == ()


def test_all_causes_have_distinct_codes(tmp_path: Path) -> None:
    """Each listing cause answers its own default code on the IP zone."""
    store = MemoryStore()
    store.apply(
        Batch(
            listings=tuple(
                Listing(
                    subject=parse_subject("198.51.100.7"),
                    cause=c,
                    reason=c.value,
                    source="t",
                    listed_at=NOW,
                )
                for c in LISTING_CAUSES
            )
        ),
        actor="t",
        action="t",
    )
    snap = snapshot_of(store, tmp_path)
    codes = sorted(
        int(snap.atom_code[a]) & 0xFF
        for a in snap.atoms(snap.v4_value(int(IPv4Address("198.51.100.7"))))
    )
    assert codes == list(range(2, 11))
