"""Detectors: stateful, pure consumers of parsed events that emit evidence over sliding windows.

``DETECTORS`` maps a detector key to its factory; each takes its parameters and a source name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from reputable.evidence.detectors import mail

DETECTORS: Final[Mapping[str, Callable[..., Any]]] = {mail.NAME: mail.MailDetector}
