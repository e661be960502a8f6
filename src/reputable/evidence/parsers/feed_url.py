"""URLs to hosts and registrable domains, with the bundled public-suffix list (never fetched)."""

from __future__ import annotations

import functools
from ipaddress import ip_address
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

from reputable.core.address import Domain, parse_domain
from reputable.core.errors import SubjectError
from reputable.evidence.parsers.feed_model import UrlEntry


@functools.cache
def _psl() -> PublicSuffixList:
    # The list ships inside the package; PublicSuffixList() reads that copy and never the network.
    return PublicSuffixList()


def registrable(host: Domain) -> Domain | None:
    """Return the registrable domain of *host* (``a.b.example.co.uk`` -> ``example.co.uk``)."""
    found = _psl().privatesuffix(host.name)
    return Domain(found) if found else None


def url_entry(url: str, reason: str = "") -> UrlEntry:
    """Return *url* reduced to its host and registrable domain; raise SubjectError if it has none."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text  # OpenPhish and friends sometimes drop the scheme
    try:
        host_text = urlsplit(text).hostname
    except ValueError as exc:
        raise SubjectError(f"bad URL {url!r}: {exc}") from exc
    if not host_text:
        raise SubjectError(f"bad URL {url!r}: no host")
    try:
        address = ip_address(host_text)
    except ValueError:
        host = parse_domain(host_text)
        domain = registrable(host)
        if domain is None:
            raise SubjectError(f"bad URL {url!r}: {host} is a public suffix") from None
        return UrlEntry(url=url.strip(), host=host, domain=domain, reason=reason)
    return UrlEntry(url=url.strip(), host=address, domain=None, reason=reason)
