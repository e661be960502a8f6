"""``[policy_service]``: where it listens and what it answers per cause."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from reputable.core.cause import LISTING_CAUSES, Cause, parse_cause
from reputable.core.errors import ConfigError

DEFAULT_LISTEN: Final = "127.0.0.1:10040"
REJECT: Final = "REJECT"
DEFER: Final = "DEFER_IF_PERMIT"
PREPEND: Final = "PREPEND"
DUNNO: Final = "DUNNO"
VERBS: Final = (REJECT, DEFER, PREPEND, DUNNO)
#: Stronger verbs win when several lookups hit.
STRENGTH: Final = {DUNNO: 0, PREPEND: 1, DEFER: 2, REJECT: 3}
DEFAULT_ACTIONS: Final[dict[Cause, str]] = {
    cause: (DEFER if cause is Cause.RDNS else REJECT) for cause in LISTING_CAUSES
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicySettings:
    """The policy service's address and its action per cause."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 10040
    actions: dict[Cause, str] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    soft: bool = False  # PREPEND a header instead of rejecting (a trial run)
    header: str = "X-Reputable"
    timeout: float = 300.0  # idle connection; Postfix's own max idle is 100 s


def parse_policy(raw: Any) -> PolicySettings:
    """Return the ``[policy_service]`` table *raw* (absent: disabled), checked."""
    if raw is None:
        return PolicySettings()
    if not isinstance(raw, dict):
        raise ConfigError('[policy_service] must be a table, e.g. listen = "127.0.0.1:10040"')
    known = {"enabled", "listen", "actions", "soft", "header", "timeout"}
    if unknown := sorted(set(raw) - known):
        raise ConfigError(f"[policy_service] unknown key(s) {unknown}; known: {sorted(known)}")
    listen = str(raw.get("listen", DEFAULT_LISTEN))
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"policy_service.listen {listen!r}: use HOST:PORT, e.g. {DEFAULT_LISTEN}")
    actions = dict(DEFAULT_ACTIONS)
    table = raw.get("actions", {})
    if not isinstance(table, dict):
        raise ConfigError('policy_service.actions must be a table: spam = "REJECT", ...')
    for cause_text, verb in table.items():
        try:
            cause = parse_cause(cause_text)
        except ValueError as exc:
            raise ConfigError(f"policy_service.actions.{cause_text}: {exc}") from exc
        if str(verb).upper() not in VERBS:
            raise ConfigError(
                f"policy_service.actions.{cause_text} = {verb!r}: use {', '.join(VERBS)}"
            )
        actions[cause] = str(verb).upper()
    header = str(raw.get("header", "X-Reputable"))
    if not header or any(c in header for c in ": \t\r\n"):
        raise ConfigError(f"policy_service.header {header!r}: a header name, e.g. X-Reputable")
    try:
        timeout = float(raw.get("timeout", 300.0))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"policy_service.timeout: {exc}") from exc
    return PolicySettings(
        enabled=bool(raw.get("enabled", True)),
        host=host.strip("[]"),
        port=int(port),
        actions=actions,
        soft=bool(raw.get("soft", False)),
        header=header,
        timeout=timeout,
    )
