"""The [policy] keys of issue 18: max_quiet per cause, contact, domain_senders, reprobe_every."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reputable.config import DEFAULT_TOML, parse_config
from reputable.core.cause import Cause
from reputable.core.errors import ConfigError


def test_defaults_follow_the_public_lists() -> None:
    """Spam-like causes end 7 days after the last evidence, malware 3, manual listings never."""
    policy = parse_config(DEFAULT_TOML).policy
    assert policy.max_quiet[Cause.SPAM] == timedelta(days=7)
    assert policy.max_quiet[Cause.MALWARE_HOST] == timedelta(days=3)
    assert policy.max_quiet[Cause.OPEN_RELAY] == timedelta(days=30)
    assert policy.max_quiet[Cause.MANUAL] is None
    assert (policy.domain_senders, policy.contact) == (3, "")
    assert policy.reprobe_every == timedelta(days=1)


def test_keys_are_read() -> None:
    """Every new key is taken from the file; "never" switches the quiet bound off."""
    policy = parse_config(
        '[policy]\ncontact = "abuse@list.example"\ndomain_senders = 5\nreprobe_every = "6h"\n'
        '[policy.causes.spam]\nmax_quiet = "24h"\n[policy.causes.rdns]\nmax_quiet = "never"\n'
    ).policy
    assert policy.contact == "abuse@list.example" and policy.domain_senders == 5
    assert policy.reprobe_every == timedelta(hours=6)
    assert policy.max_quiet[Cause.SPAM] == timedelta(hours=24)
    assert policy.max_quiet[Cause.RDNS] is None


@pytest.mark.parametrize(
    "text",
    [
        '[policy.causes.spam]\nmax_quiet = "soon"\n',
        "[policy]\ndomain_senders = 0\n",
    ],
)
def test_bad_values_name_the_key(text: str) -> None:
    """A bad value is a config error naming the [policy] table, not a traceback."""
    with pytest.raises(ConfigError, match=r"\[policy[.a-z]*\].*(max_quiet|domain_senders)"):
        parse_config(text)
