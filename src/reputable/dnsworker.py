"""Entry point of one DNS worker process (``python -m reputable.dnsworker``, started by serve).

It composes, so it lives beside app.py: it reads the configuration and hands the worker of
publication/dnsbl/worker.py the parts it needs (no stage module imports reputable.config).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from reputable.config import load_config
from reputable.core import log
from reputable.core.errors import ReputableError
from reputable.core.lifeline import follow_parent
from reputable.publication.dnsbl.worker import Worker


def main(argv: list[str] | None = None) -> int:
    """Run one DNS worker until SIGTERM/SIGINT; 2 when its configuration cannot be used."""
    follow_parent()  # SIGTERM when serve dies, even by SIGKILL (core/lifeline.py)
    import argparse

    parser = argparse.ArgumentParser(
        description="reputable DNS worker (started by `reputable serve`)"
    )
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--index", type=int, default=0)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    args = parser.parse_args(argv)
    log.setup(os.environ.get("REPUTABLE_LOG_LEVEL", "INFO"))
    try:
        config = load_config(args.config)
        log.set_format(log.format_from(config.extra.get("log")))  # [log] format, as serve's
        worker = Worker(config, args.index)
        worker.stopping = stop
        if not stop.is_set():
            worker.run()
    except ReputableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
