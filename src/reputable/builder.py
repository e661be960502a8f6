"""Serve's snapshot build child, ``python -m reputable.builder``: the build without the CLI.

``reputable serve`` rebuilds its snapshot in a child process (the supervisor's memory stays
flat whatever the list size). Through ``reputable snapshot build`` that child paid the CLI's
start-up first (Typer, Rich, pydantic's coercion, every core command's imports: ~0.6 s CPU)
before it read a row, and the first build of a fresh ``serve`` waited for serve's own
schema check before it was even started (issue 16). This entry point imports only what a
build needs, and ``--wait`` lets the launcher start it before it has checked the
configuration: the child does its imports meanwhile and builds once serve says go.

The go line is the digest of the configuration text serve checked (config.CHECKED_ENV):
the child skips the schema for that very text and checks any other text in full. End of
input instead of a line (serve stopped, the configuration is wrong, or a snapshot is in place
after all) ends the child quietly, having built nothing.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the launcher imports this module before its checks
    import subprocess

    from reputable.config import Config
    from reputable.publication.snapshot.publish import Published


def build_command(config_path: Path | None, *, wait: bool = False) -> list[str]:
    """Return the command line of a build child for *config_path* (``--wait``: see above)."""
    config = ["--config", str(config_path)] if config_path else []
    return [sys.executable, "-m", "reputable.builder", *config, *(["--wait"] if wait else [])]


def release(child: subprocess.Popen[bytes], digest: str | None) -> None:
    """Tell a ``--wait`` *child* to build the text with *digest*, or (None) to end unbuilt."""
    if child.stdin is None or child.stdin.closed:
        return
    try:
        if digest is not None:
            child.stdin.write(digest.encode("ascii") + b"\n")
        child.stdin.close()
    except BrokenPipeError:  # the child ended already: its exit code says how
        pass


def publish_now(config: Config, now: datetime | None = None) -> Published:
    """Rebuild the snapshot from the store in this process (``reputable snapshot build``)."""
    from reputable.core import log
    from reputable.core.errors import SnapshotError
    from reputable.publication.dnsbl.worker import record_plan
    from reputable.publication.snapshot.publish import publish
    from reputable.store.dsn import open_store

    store = open_store(config)
    try:
        result = publish(store, config, now or datetime.now(UTC))
    finally:
        store.close()
    log.info(
        "snapshot_built",
        serial=result.serial,
        listings=result.listings,
        allows=result.allows,
        ms=round(result.seconds * 1000, 1),
        path=result.path,
    )
    try:
        record_plan(config)
    except SnapshotError as exc:  # the snapshot just written cannot be mapped: say so
        log.warning("serve_plan_not_written", error=str(exc))
    return result


def main(argv: list[str]) -> int:
    """Build the snapshot of ``--config`` (after serve's go line with ``--wait``); exit code.

    The codes are the CLI's (docs/cli.md): 2 for a bad configuration, 3 for a failed build.
    """
    import argparse

    from reputable.config import CHECKED_ENV, load_config
    from reputable.core import log
    from reputable.core.errors import ReputableError, exit_code_of

    # What publish_now imports, loaded now: with --wait, while serve checks the config.
    from reputable.publication.dnsbl import worker  # noqa: F401
    from reputable.publication.snapshot import publish  # noqa: F401
    from reputable.store import dsn  # noqa: F401

    parser = argparse.ArgumentParser(prog="python -m reputable.builder")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--wait", action="store_true", help="Build after serve's go line.")
    args = parser.parse_args(argv)
    log.setup("INFO")
    if args.wait:
        digest = sys.stdin.readline().strip()
        if not digest:
            return 0
        os.environ[CHECKED_ENV] = digest
    try:
        config = load_config(args.config)
        log.set_format(log.format_from(config.extra.get("log")))
        publish_now(config)
    except ReputableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code_of(exc)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    if os.environ.get("REPUTABLE_SUPERVISOR_PID"):  # a child of serve: end when serve does
        from reputable.core.lifeline import follow_parent

        follow_parent()
    sys.exit(main(sys.argv[1:]))
