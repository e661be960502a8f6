"""The shipped zone catalogue, user zone files and zone selection."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from reputable.checker.catalogue import SubjectKind, builtin_zones, load_zone_file, merge, select
from reputable.checker.model import Delisting, Removal
from reputable.checker.settings import parse_settings
from reputable.core.cause import Cause
from reputable.core.errors import ConfigError


def test_builtin_catalogue_has_forty_documented_lists() -> None:
    """At least 40 active zones ship, each with operator, and blocklists with a removal URL."""
    zones = builtin_zones()
    active = [z for z in zones if not z.closed]
    assert len(active) >= 40
    assert len({z.name for z in zones}) == len(zones)
    assert all(z.operator for z in zones)
    assert all(z.removal_url for z in active if not z.allow)
    kinds = {(z.kind, z.allow) for z in active}
    assert kinds >= {(SubjectKind.IP, False), (SubjectKind.DOMAIN, False), (SubjectKind.IP, True)}


def test_spamhaus_refusal_codes_and_meanings() -> None:
    """Spamhaus zones know their refusal answers and map XBL to compromised, PBL to rdns."""
    zen = next(z for z in builtin_zones() if z.name == "zen.spamhaus.org")
    assert {"127.255.255.252", "127.255.255.254", "127.255.255.255"} <= zen.refused
    assert zen.code("127.0.0.4") is not None and zen.code("127.0.0.4").cause is Cause.COMPROMISED
    assert zen.code("127.0.0.10") is not None and zen.code("127.0.0.10").cause is Cause.RDNS


def test_sorbs_is_closed_and_skipped_unless_named() -> None:
    """SORBS is marked shut down (2024) and only queried when asked for by name."""
    zones = builtin_zones()
    sorbs = [z for z in zones if "sorbs" in z.name]
    assert sorbs and all("2024" in z.closed for z in sorbs)
    assert not [z for z in select(zones) if "sorbs" in z.name]
    assert [z.name for z in select(zones, names=["dnsbl.sorbs.net"])] == ["dnsbl.sorbs.net"]


def test_user_zone_overrides_builtin_and_adds_own(tmp_path: Path) -> None:
    """A user file adds its zones and replaces a shipped zone of the same name."""
    path = tmp_path / "mine.toml"
    path.write_text(
        '[[zone]]\nname = "bl.reputable.test"\nnameserver = "127.0.0.1:5300"\n'
        '[[zone]]\nname = "zen.spamhaus.org"\noperator = "mirror"\n'
    )
    zones = {z.name: z for z in merge(builtin_zones(), load_zone_file(path))}
    assert zones["bl.reputable.test"].nameserver == "127.0.0.1:5300"
    assert zones["zen.spamhaus.org"].operator == "mirror"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[zone]]\nname = "x.test"\nkind = "url"\n', "kind must be 'ip' or 'domain'"),
        ('[[zone]]\nname = "x.test"\npolicy = "maybe"\n', "policy must be 'block' or 'allow'"),
        ('[[zone]]\nname = "x.test"\ncause = "evil"\n', "unknown cause 'evil'"),
        ('[[zone]]\nname = "x.test"\ncodes = { "127.0.0.2" = 5 }\n', "code '127.0.0.2'"),
        ("[[zone]]\nkind = 'ip'\n", "needs at least name"),
        ("zone = [", "not valid TOML"),
    ],
)
def test_bad_zone_file_names_file_and_problem(tmp_path: Path, text: str, message: str) -> None:
    """Every malformed zone file is rejected with the file name and what to fix."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_zone_file(path)
    assert str(path) in str(info.value)


def test_checker_config_table(tmp_path: Path) -> None:
    """The [checker] table sets nameserver, limits and inline zones."""
    settings = parse_settings(
        {"nameserver": "127.0.0.1:5300", "timeout": 1, "retries": 2, "concurrency": 50,
         "zone": [{"name": "bl.reputable.test"}]},
        tmp_path,
    )  # fmt: skip
    assert (settings.nameserver, settings.timeout, settings.retries) == ("127.0.0.1:5300", 1.0, 2)
    assert [z.name for z in settings.zones] == ["bl.reputable.test"]
    with pytest.raises(ConfigError, match="retries must be"):
        parse_settings({"retries": -1}, tmp_path)


@pytest.mark.parametrize(
    ("zone", "code", "words"),
    [
        ("zrd.spamhaus.org", "127.0.2.2", "first seen 0-2 hours ago"),
        ("zrd.spamhaus.org", "127.0.2.24", "first seen 23-24 hours ago"),
        ("dwl.dnswl.org", "127.0.3.2", "email service providers, trust medium"),
        ("list.dnswl.org", "127.0.15.0", "email marketing providers, trust none"),
        ("iadb.isipp.com", "127.0.1.255", "vouched listing"),
        ("iadb.isipp.com", "127.3.100.10", "confirmed (double) opt-in"),
    ],
)
def test_documented_return_codes_have_meanings(zone: str, code: str, words: str) -> None:
    """Zones whose operators document their codes carry those meanings."""
    found = {z.name: z for z in builtin_zones()}[zone].code(code)
    assert found is not None and words in found.meaning


def test_builtin_removal_methods() -> None:
    """The catalogue says how lists remove entries: expiry, network levels, paid express, per code."""
    zones = {z.name: z for z in builtin_zones()}
    spamcop = zones["bl.spamcop.net"].delisting
    assert spamcop.method is Removal.EXPIRY and spamcop.expires == timedelta(hours=24)
    level1 = zones["dnsbl-1.uceprotect.net"].delisting
    assert level1.expires == timedelta(days=7) and level1.paid_express
    for level in ("dnsbl-2.uceprotect.net", "dnsbl-3.uceprotect.net"):
        assert zones[level].delisting.method is Removal.NETWORK
    zen = zones["zen.spamhaus.org"]
    assert zen.delisting.method is Removal.SELF_SERVICE
    drop = zen.code("127.0.0.9")
    assert drop is not None and zen.delisting_of([drop]).method is Removal.NETWORK
    assert zones["torexit.dan.me.uk"].delisting.method is Removal.PERMANENT


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('removal = "beg"', "removal must be one of self_service, expiry"),
        ('expires = "soon"', "expires: "),
        ("paid_express = 1", "paid_express must be a bool"),
        ('[zone.codes]\n"127.0.0.2" = { meaning = "x", removal = "never" }', "code '127.0.0.2'"),
    ],
)
def test_bad_removal_keys_name_the_key(tmp_path: Path, entry: str, message: str) -> None:
    """A wrong removal, expires or paid_express value is a ConfigError naming file, zone and key."""
    path = tmp_path / "zones.toml"
    path.write_text(f'[[zone]]\nname = "x.test"\n{entry}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"x\.test") as raised:
        load_zone_file(path)
    assert message in str(raised.value) and str(path) in str(raised.value)


def test_expires_alone_means_expiry(tmp_path: Path) -> None:
    """A zone with only expires = "48h" removes entries by expiry after 48 hours."""
    path = tmp_path / "zones.toml"
    path.write_text('[[zone]]\nname = "x.test"\nexpires = "48h"\n', encoding="utf-8")
    (zone,) = load_zone_file(path)
    assert zone.delisting == Delisting(method=Removal.EXPIRY, expires=timedelta(hours=48))
