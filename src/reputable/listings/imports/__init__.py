"""Importers of third-party listing data (pure parsers: file text in, one Batch out)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from reputable.listings.imports import rbldnsd
from reputable.listings.imports.rbldnsd import Imported, ImportSpec

Importer = Callable[[str, ImportSpec], Imported]

IMPORTERS: Final[Mapping[str, Importer]] = {m.NAME: m.parse for m in (rbldnsd,)}
