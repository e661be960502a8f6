"""The checker's optional libraries, installed by the ``checker`` extra: checkdmarc, pyspf, dkimpy.

The DNS server and the pipeline never need them (checkdmarc alone pulls in some twenty
packages), so they are not runtime dependencies of reputable: ``pip install 'reputable[checker]'``
adds them. The modules that use them import them when a check runs, and ``reputable check``
calls :func:`require` first, so a missing library is a message naming what to install.
"""

from __future__ import annotations

import importlib
from typing import Final

from reputable.core.errors import ReputableError

#: Module imported -> package to install.
LIBRARIES: Final = {"checkdmarc": "checkdmarc", "spf": "pyspf", "dkim": "dkimpy"}
INSTALL: Final = "pip install 'reputable[checker]'"


class MissingExtra(ReputableError):
    """A library of the ``checker`` extra is not installed."""


def missing() -> list[str]:
    """Return the packages of the extra that cannot be imported, in LIBRARIES order."""
    gone: list[str] = []
    for module, package in LIBRARIES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            gone.append(package)
    return gone


def require(what: str = "reputable check") -> None:
    """Raise MissingExtra, naming the packages and the install command, unless all import."""
    gone = missing()
    if gone:
        verb = "is" if len(gone) == 1 else "are"
        raise MissingExtra(
            f"{what} needs the checker's libraries, and {', '.join(gone)} {verb} not installed:"
            f" run {INSTALL} (or pass --no-diagnostics to query the DNS lists only)"
        )
