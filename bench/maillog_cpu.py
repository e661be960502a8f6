"""CPU time of a batch mail-log ingest (parse + detect, every event counted), for side-by-side runs.

    python bench/maillog_cpu.py                           # this tree's reputable
    PYTHONPATH=/path/to/other/src python bench/maillog_cpu.py   # another checkout's, same log

Generates the 400,000-line Postfix log of tests/evidence/maillog_gen.py (seed 3) and prints the
lines per second of CPU time ``MailRun.detect`` needs on it. CPU time, not wall time: on a
shared machine two runs taken one after the other compare fairly only that way.
"""

from __future__ import annotations

import io
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the log generator (tests/)

from tests.evidence.maillog_gen import generate

import reputable
from reputable.evidence.detectors.mail_config import MailParams
from reputable.evidence.parsers.syslog_time import TimeParser
from reputable.evidence.sources.maillog import MailRun


def main() -> None:
    """Generate, run, print."""
    buf = io.StringIO()
    generate(buf, 400_000, seed=3)
    text = buf.getvalue()
    chunks = []
    i = 0
    while i < len(text):
        j = text.find("\n", i + (4 << 20))
        j = len(text) if j < 0 else j + 1
        chunks.append(text[i:j])
        i = j
    run = MailRun(MailParams(), TimeParser(datetime(2026, 3, 5, tzinfo=UTC)))
    cpu = time.process_time()
    for chunk in chunks:
        run.detect(chunk, "bench", 1, "postfix")
    run.finish()
    lines = text.count("\n")
    where = Path(reputable.__file__).parent.parent
    print(
        f"{where}: {lines / (time.process_time() - cpu):,.0f} lines/s of CPU (every event counted)"
    )


if __name__ == "__main__":
    main()
