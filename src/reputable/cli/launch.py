"""The `reputable` entry point: `serve` starts without the CLI library, everything else with it.

`reputable serve` is what operators restart and what mirrors wait for, and its start-up is
held to rbldnsd's (bench/dns_vs_rbldnsd.py). Importing Typer and Rich costs about 0.07 s of
the 0.29 s start measured with them, so `serve` (and only `serve`) is parsed here with
argparse; its options are the same as the Typer command's, and `reputable serve --help`
still goes through Typer.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when needed: `serve` answers DNS before most imports
    import subprocess
    import threading

    from reputable.config import Config
    from reputable.publication.dnsbl.fastpath import EarlyStart
    from reputable.publication.dnsbl.worker import Worker

#: How much nicer than serve its start-up checks run beside its first build (_check_beside_build).
CHECKS_NICENESS = 10
#: Pids of the children a starting `serve` has started (its first build): a stop request
#: during the start ends them (stop_before_supervision); the supervisor takes them over.
STARTING_CHILDREN: list[int] = []
GLOBAL_OPTIONS_WITH_VALUE = frozenset({"--config", "--log-level"})
DEFAULT_CONFIG = Path("reputable.toml")  # config.DEFAULT_PATH, without importing config


def command_word(argv: list[str]) -> str | None:
    """Return the sub-command named on *argv*, skipping global options and their values."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in GLOBAL_OPTIONS_WITH_VALUE:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        return arg
    return None


def stop_before_supervision(signum: int, frame: FrameType | None) -> None:
    """Exit at once, quietly, on SIGTERM/SIGINT while `serve` starts (the first build ends too).

    Until the supervisor's event loop takes the signals over (app.serve), a stop request has
    nothing to save: sockets and the memory map go with the process. ``os._exit`` skips the
    interpreter's finalisation, which a signal can otherwise interrupt anywhere (a
    ``KeyboardInterrupt`` traceback from an import, or a crash while daemon threads run).
    The first build child (STARTING_CHILDREN) is ended and reaped first: the kernel would
    end it too (core/lifeline.py), but only after serve is gone, or not at all if serve goes
    before the child has asked to follow it.
    """
    for pid in STARTING_CHILDREN:
        end_child(pid)
    os._exit(0)


def end_child(pid: int, grace: float = 0.8) -> None:
    """SIGTERM *pid*, reap it, SIGKILL it after *grace* seconds (no Popen: safe in a handler)."""
    import time

    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
            time.sleep(0.002)
    except ChildProcessError:  # reaped already (the main thread's poll)
        pass
    except ProcessLookupError:
        pass


def guard_startup(argv: list[str]) -> None:
    """Make SIGTERM/SIGINT end a starting `serve` quietly (no-op for every other command)."""
    if command_word(argv) == "serve" and not {"--help", "-h"} & set(argv):
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop_before_supervision)


def _start_worker(config: Config, early: EarlyStart | None) -> Worker:
    """Start the single in-process DNS worker, adopting *early*'s sockets and waiting packets."""
    from reputable.publication.dnsbl.worker import Worker

    worker = Worker(config, 0, early)
    worker.start()
    return worker


def _adopt_early(early: EarlyStart, path: Path) -> Worker | None:
    """Start the worker on *early*'s sockets at once, from the plan's configuration text.

    The early loop leaves every query its C engine cannot answer (domain zone, IPv6, SOA...)
    waiting for the worker. The schema check of ``load_config`` (pydantic: 0.26 s here, seconds
    under load) and the preflight's imports kept them past a resolver's 1 s timeout (issue 16).
    The plan's text passed the schema when its serve or snapshot build recorded it, so it is
    parsed without it here; ``load_config`` checks the file in full while the worker answers.
    None (the usual start follows) when the text does not parse or asks for several workers.
    """
    from reputable.config import parse_config
    from reputable.core import log
    from reputable.core.errors import ReputableError

    try:
        config = parse_config(early.plan["config"], path, checked=True)
        log.set_format(log.format_from(config.extra.get("log")))
    except (ReputableError, LookupError, TypeError, ValueError, AttributeError):
        return None  # the schema changed since: load_config names the problem
    if config.dns.workers != 1:
        return None
    return _start_worker(config, early)


def _start_build(config_path: Path | None) -> subprocess.Popen[bytes]:
    """Start serve's first snapshot build, waiting for `builder.release` (it ends with serve).

    Started before serve checks the configuration, so its imports run beside that check;
    it reads no row until serve releases it with the digest of the text it checked.
    """
    import subprocess

    from reputable.builder import build_command
    from reputable.core.lifeline import adopt_children

    adopt_children()
    cmd = build_command(config_path, wait=True)
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    STARTING_CHILDREN.append(child.pid)
    return child


def _needs_build(config_path: Path) -> bool:
    """True when the snapshot *config_path* names is missing or unreadable (a cheap guess).

    Before the configuration is checked: a file that does not parse says False, and
    ``load_config`` reports it.
    """
    from reputable.publication.dnsbl.fastpath import snapshot_path_of
    from reputable.publication.snapshot.layout import readable

    try:
        snapshot = snapshot_path_of(config_path, config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return snapshot is not None and not readable(snapshot)


def _startup_checks(
    config: Config, metrics: str | None, built: threading.Event, failed: list[BaseException]
) -> None:
    """Run serve's preflight CHECKS_NICENESS nicer than serve, then import the server if the
    build still runs (once it is *built*, DNS starts before those imports: launch's step 6).

    On Linux the nice value is each thread's own: this thread's ends with it.
    """
    with contextlib.suppress(OSError):  # not allowed (seccomp, ...): at the usual priority
        os.nice(CHECKS_NICENESS)
    try:
        from reputable.config_check import preflight

        preflight(config, metrics)
        if not built.is_set():
            import reputable.app  # noqa: F401  (its imports: the rest of the server)
    except BaseException as exc:  # re-raised by the main thread, unchanged
        failed.append(exc)


def _check_beside_build(
    config: Config, metrics: str | None, build: subprocess.Popen[bytes]
) -> None:
    """Check the configuration and import the server while the first build runs; raise its error.

    Serve cannot answer before the build has written the snapshot, and the build's reader and
    packer threads use both cores of a small machine: the preflight's imports and checks
    (about 0.35 s CPU) run in a thread of lower priority (nice is per thread on Linux), so
    they fill the build's idle moments instead of slowing it. Once the build is done, the
    thread gets its priority back where the process may raise it (root, or systemd's
    ``LimitNICE=+0``); elsewhere it finishes at its own. With autogroups (a session's
    processes share the CPU as one group: the default of most distributions' kernels) or
    a cgroup with the cpu controller, a nice value counts only among serve's own threads
    and children, so other programs' load cannot starve the checks. A bad configuration
    still stops serve before anything binds, with the same message: it is raised here.
    """
    import threading

    from reputable.publication.snapshot.layout import readable

    failed: list[BaseException] = []
    built = threading.Event()
    thread = threading.Thread(
        target=_startup_checks, args=(config, metrics, built, failed), name="startup-checks"
    )
    thread.start()
    while thread.is_alive():
        thread.join(0.01)
        if built.is_set() or thread.native_id is None:
            continue
        if build.poll() is not None or readable(config.snapshot_path):
            built.set()  # the build is over: nothing left to make room for
            with contextlib.suppress(OSError):
                os.setpriority(
                    os.PRIO_PROCESS, thread.native_id, os.getpriority(os.PRIO_PROCESS, 0)
                )
    if failed:
        raise failed[0]


def _serve(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="reputable", add_help=False)
    parser.add_argument("--config", type=Path, default=os.environ.get("REPUTABLE_CONFIG"))
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("command")
    parser.add_argument("--metrics", default="127.0.0.1:9153")
    args = parser.parse_args(argv)
    path = Path(args.config) if args.config else None
    early = None
    first_build: subprocess.Popen[bytes] | None = None
    if (path or DEFAULT_CONFIG).exists():
        # Answer from the last snapshot before anything else is imported (docs/dns.md).
        from reputable.publication.dnsbl.fastpath import early_start

        early = early_start(path or DEFAULT_CONFIG)
        if early is None and _needs_build(path or DEFAULT_CONFIG):
            # Nothing to answer from: start the first build now, before the checks and
            # imports below (~0.5 s CPU); it builds once load_config has passed the file.
            first_build = _start_build((path or DEFAULT_CONFIG).resolve())
    from reputable.config import DEFAULT_TOML, load_config, text_digest
    from reputable.core import log
    from reputable.core.errors import ReputableError

    log.setup(args.log_level)
    worker = None
    try:
        if early is not None:
            worker = _adopt_early(early, path or DEFAULT_CONFIG)
            if worker is not None:
                early = None
        config = load_config(path)
        log.set_format(log.format_from(config.extra.get("log")))
        if worker is not None and worker.config != config:
            log.warning("early_start_discarded", reason="the configuration file changed")
            worker.stop()  # closes the early sockets: the usual start below binds again
            worker = None
        from reputable.builder import release
        from reputable.publication.snapshot.layout import readable

        if worker is None and not readable(config.snapshot_path):
            # The supervisor waits for this build; it runs beside the checks below.
            if first_build is None:  # not started above (no config file: the defaults)
                first_build = _start_build(config.path)
            text = config.path.read_text(encoding="utf-8") if config.path else DEFAULT_TOML
            release(first_build, text_digest(text))
        elif first_build is not None:  # a snapshot is there after all: end it unbuilt
            release(first_build, None)
            STARTING_CHILDREN.remove(first_build.pid)
            first_build = None
        if first_build is not None:
            # Checks and imports at low priority beside the build (~0.35 s CPU): DNS waits
            # for the build anyway, and the build's two threads want both cores.
            _check_beside_build(config, args.metrics, first_build)
        else:
            from reputable.config_check import preflight

            preflight(config, args.metrics)  # every section, file and address, before DNS binds
        if worker is None and config.dns.workers == 1 and readable(config.snapshot_path):
            # Serve DNS before the rest of the server is imported (store, policy, asyncio:
            # ~0.08 s); the supervisor adopts this worker, the worker the early start.
            worker = _start_worker(config, early)
            early = None
        from reputable.app import serve

        serve(config, metrics_listen=args.metrics or None, worker=worker, first_build=first_build)
    except ReputableError as exc:
        if worker is not None:
            worker.stop()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if early is not None:
            early.close()
        if first_build is not None and first_build.poll() is None:  # serve failed first
            first_build.terminate()  # it had no go line, or is mid-build: both end now
            first_build.wait()
        STARTING_CHILDREN.clear()
    return 0


def main() -> None:
    """Run `reputable`."""
    argv = sys.argv[1:]
    if os.environ.get("REPUTABLE_SUPERVISOR_PID"):  # a child of serve: end when serve does
        from reputable.core.lifeline import follow_parent

        follow_parent()
    if command_word(argv) == "serve" and not {"--help", "-h"} & set(argv):
        guard_startup(argv)  # again: main() may be called without the package's early guard
        sys.exit(_serve(argv))
    from reputable.cli.main import main as cli_main

    cli_main()
