"""Blocking DNS for the SPF/DMARC libraries, pinned to the configured nameserver.

checkdmarc takes a ``resolver=`` object: we hand it one that knows only our nameserver
(:func:`reputable.core.dnsclient.sync_resolver`).
pyspf looks names up through its module-level ``spf.DNSLookup``, which by default asks the
machine's resolver; :func:`install` (run by :func:`bound`, and by importing this module when
pyspf is installed) replaces it with a function that asks the resolver bound to the
current thread by :func:`bound`, and fails (TempError) when none is bound, so pyspf can never
reach the default resolver through reputable.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dns.exception
import dns.resolver

_bound = threading.local()


def _pyspf_lookup(name: str, qtype: str, strict: Any = True, timeout: float = 20) -> list[Any]:
    """Answer pyspf's lookups from the bound resolver, in the shape pyspf's own driver returns."""
    import spf  # type: ignore[import-untyped]  # the extra (extra.py); no hints

    resolver: dns.resolver.Resolver | None = getattr(_bound, "resolver", None)
    if resolver is None:
        raise spf.TempError("DNS: no nameserver bound for SPF evaluation")
    try:
        answers = resolver.resolve(name, qtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise spf.TempError(f"DNS {exc}") from exc
    out: list[Any] = []
    for rdata in answers:
        if qtype in ("A", "AAAA"):
            out.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            out.append(((name, qtype), (rdata.preference, rdata.exchange.to_text(True))))
        elif qtype == "PTR":
            out.append(((name, qtype), rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            out.append(((name, qtype), rdata.strings))
    return out


def install() -> None:
    """Point pyspf's lookups at :func:`_pyspf_lookup` (idempotent; pyspf is imported here)."""
    import spf  # the checker extra (extra.py), imported when used

    spf.DNSLookup = _pyspf_lookup


@contextmanager
def bound(resolver: dns.resolver.Resolver) -> Iterator[None]:
    """Make pyspf in this thread ask *resolver* for the duration of the block."""
    install()
    _bound.resolver = resolver
    try:
        yield
    finally:
        _bound.resolver = None


if importlib.util.find_spec("spf") is not None:
    install()  # as soon as reputable's checker is loaded, pyspf can no longer reach the system
