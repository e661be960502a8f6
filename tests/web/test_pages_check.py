"""The optional "check my setup" page runs the checker against the configured nameserver only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.checker.conftest import GENERIC_IP, LISTED_IP, world_data
from tests.checker.dnsfixture import DnsFixture
from tests.web.conftest import Api
from tests.web.pages_fixtures import start_site


@pytest.fixture(scope="module")
def checking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, DnsFixture]]:
    """A server with setup checks on, its checker asking a fixture nameserver on loopback."""
    world = DnsFixture(world_data()).start()
    try:
        more = f'[checker]\nnameserver = "{world.nameserver}"\ntimeout = 2\n'
        yield from (
            (api, world)
            for api in start_site(
                tmp_path_factory.mktemp("check"), web="check_setup = true", more=more
            )
        )
    finally:
        world.stop()


def test_generic_ptr_gets_a_fix(checking: tuple[Api, DnsFixture]) -> None:
    """A dynamic-looking PTR is reported with what to do, from the fixture nameserver."""
    api, world = checking
    html = api.client.get(f"/check/{GENERIC_IP}").text
    assert 'data-check="rdns" data-severity="error"' in html and "does not resolve back" in html
    assert "looks generic" in html and "What to do:" in html
    assert world.count("26.100.51.198.in-addr.arpa") >= 1  # asked the configured server


def test_good_setup_has_nothing_to_fix(checking: tuple[Api, DnsFixture]) -> None:
    """A forward-confirmed PTR and a domain with SPF, DKIM and DMARC: findings, none broken."""
    api, _ = checking
    html = api.client.get(f"/check/{LISTED_IP}?domain=example.net").text
    assert 'data-check="spf"' in html and 'data-check="dmarc"' in html
    assert 'data-severity="error"' not in html


def test_lookup_page_offers_the_check_and_bad_input_is_readable(
    checking: tuple[Api, DnsFixture],
) -> None:
    """The lookup page has the form; a range or a bad domain gets a readable 400."""
    api, _ = checking
    assert 'action="/check/192.0.2.1"' in api.client.get("/lookup/192.0.2.1").text
    wide = api.client.get("/check/192.0.2.0/24")
    assert wide.status_code == 400 and "One address" in wide.text
    bad = api.client.get("/check/192.0.2.1?domain=not_a;domain")
    assert bad.status_code == 400 and "Traceback" not in bad.text
