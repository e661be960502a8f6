"""The [resolver], [feeds] and [probes] sections: documented defaults and errors naming the key."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from reputable.config import parse_config
from reputable.core.errors import ConfigError
from reputable.evidence.sources.settings import parse_settings


def test_defaults_match_the_documentation() -> None:
    """With no sections the resolver is 127.0.0.1:53 and probes allow only logged addresses."""
    settings = parse_settings(parse_config("").extra)
    assert (settings.resolver.host, settings.resolver.port) == (ip_address("127.0.0.1"), 53)
    assert settings.probes.allow == ()
    assert settings.probes.allow_seen is True
    assert settings.probes.proxy_canary is None
    assert (settings.feeds.max_invalid, settings.feeds.max_shrink) == (0.1, 0.5)


def test_values_are_read() -> None:
    """Endpoints, networks and durations are parsed into typed values."""
    text = (
        '[resolver]\nnameserver = "[::1]:5353"\n'
        '[probes]\nallow = ["198.51.100.0/24"]\nproxy_canary = "192.0.2.1:8080"\nper_target = "1h"\n'
    )
    settings = parse_settings(parse_config(text).extra)
    assert (settings.resolver.host, settings.resolver.port) == (ip_address("::1"), 5353)
    assert settings.probes.allow == (ip_network("198.51.100.0/24"),)
    assert settings.probes.proxy_canary == (ip_address("192.0.2.1"), 8080)
    assert settings.probes.per_target == 3600


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[resolver]\nnameserver = "ns.example.test"\n', r"\[resolver\] nameserver"),
        ('[probes]\nrelay_to = "nobody"\n', "probes.relay_to"),
        ('[probes]\nallow = ["not-a-net"]\n', "probes.allow"),
        ("[feeds]\nmax_shrink = 2.0\n", "max_shrink"),
        ('[feeds]\ntimeout = "soon"\n', r"\[feeds\] timeout"),
        ('[probes]\nper_minute = "many"\n', r"\[probes\] per_minute"),
    ],
)
def test_bad_values_name_the_key(text: str, message: str) -> None:
    """Each invalid value raises ConfigError naming the offending key."""
    with pytest.raises(ConfigError, match=message):
        parse_settings(parse_config(text).extra)
