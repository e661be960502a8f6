"""Never-crash properties of the checker's parsers: sample messages, MTA-STS policies, PTR names."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import dns.resolver
from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.checker import domainpolicy, message
from reputable.core.ptrname import generic_reasons

#: A resolver pointing at a closed loopback port; unsigned junk never needs it.
NOWHERE = dns.resolver.Resolver(configure=False)
NOWHERE.nameservers = ["127.0.0.1"]
NOWHERE.port = 9
NOWHERE.lifetime = 0.2


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_junk_messages_give_findings_never_exceptions(raw: bytes) -> None:
    """Any bytes as a sample message give findings (From, DKIM, alignment, unsubscribe)."""
    if b"dkim-signature" in raw.lower():
        return  # a signature would make dkimpy ask the (closed) nameserver: covered elsewhere
    checks = {f.check for f in message.assess(raw, NOWHERE)}
    assert {"message-dkim", "alignment", "list-unsubscribe"} <= checks


@given(st.text(max_size=500))
def test_policy_parser_never_crashes(text: str) -> None:
    """Any text is a policy or a reason why not, never an exception."""
    policy, why = domainpolicy.parse_policy(text)
    assert (policy is None) == bool(why)


@given(
    st.from_regex(r"[a-z0-9.-]{0,60}", fullmatch=True),
    st.one_of(
        st.integers(0, 2**32 - 1).map(IPv4Address), st.integers(0, 2**128 - 1).map(IPv6Address)
    ),
)
def test_generic_rule_never_crashes(name: str, address: IPv4Address | IPv6Address) -> None:
    """Any host name and address give a list of reasons (possibly empty)."""
    assert isinstance(generic_reasons(name, address), list)
