"""Dropping root after the DNS sockets are bound (``user = "NAME"`` in reputable.toml).

`reputable serve` started as root binds port 53, then becomes NAME for good: supervisor,
in-process DNS threads and every DNS worker process (each worker drops by itself once bound).
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from reputable.core.errors import ConfigError


@dataclass(frozen=True)
class Account:
    """The user serve runs as after binding."""

    name: str
    uid: int
    gid: int


def lookup(name: object) -> Account | None:
    """Return the account of the config's ``user`` key (None when unset), or a ConfigError."""
    if name is None or name == "":
        return None
    if not isinstance(name, str):
        raise ConfigError(f'user = {name!r}: give a user name, e.g. user = "reputable"')
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(
            f"user = {name!r}: no such user; create it (useradd --system --home-dir"
            f" /var/lib/reputable --shell /usr/sbin/nologin {name}) or remove the key"
        ) from None
    return Account(name, entry.pw_uid, entry.pw_gid)


def give_files(account: Account, paths: list[Path]) -> None:
    """Hand the existing *paths* (store, its WAL, the snapshot) to *account* while still root."""
    if os.geteuid() != 0:
        return
    for path in paths:
        if path.exists():
            os.chown(path, account.uid, account.gid)


def drop(account: Account | None) -> bool:
    """Become *account* for good (groups, gid, uid); True if privileges were dropped.

    Not root: nothing to drop when already running as the account, else a ConfigError.
    """
    if account is None:
        return False
    if os.geteuid() != 0:
        if os.geteuid() == account.uid:
            return False
        raise ConfigError(
            f"user = {account.name!r}: serve runs as uid {os.geteuid()}, not root, so it cannot"
            " switch users; start it as root or remove the key"
        )
    os.setgroups(os.getgrouplist(account.name, account.gid))
    os.setgid(account.gid)
    os.setuid(account.uid)
    return True
