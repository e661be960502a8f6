"""Every ingest command reads its input exactly once: pipes, /dev/stdin, process substitution, FIFOs, - (issue 14, defect 4)."""

from __future__ import annotations

import gzip
import io
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from reputable.evidence.sources.inputs import MAX_LINE, read_chunks
from tests.evidence.maillog_gen import generate

SAMPLES = Path(__file__).parent.parent / "samples"
NOW = "2026-01-03T12:00:00Z"
#: What must be equal between reading a file and reading the same bytes as a stream.
MAIL_SUMMARY = re.compile(r"^(\d+) lines read .*?: (.*)$|^(evidence: \d+)", re.M)


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "reputable.toml"
    path.write_text('data_dir = "."\n', encoding="utf-8")
    return path


def _run(
    tmp_path: Path, args: list[str], *, stdin: bytes | None = None, shell: bool = False
) -> str:
    """Run `reputable ARGS` (through bash when *shell*, for <(...)); return stdout."""
    base = [sys.executable, "-m", "reputable", "--config", str(_config(tmp_path))]
    command: list[str] | str = base + args
    if shell:
        command = " ".join(base + args)
    done = subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
        shell=shell,
        executable="/bin/bash" if shell else None,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def _summary(out: str) -> list[str]:
    return [m.group(0).split(" in ")[0] + (m.group(2) or "") for m in MAIL_SUMMARY.finditer(out)]


@pytest.fixture(scope="module")
def mail_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated Postfix log of 30,000 lines (several read pieces)."""
    path = tmp_path_factory.mktemp("inputs") / "mail.log"
    text = io.StringIO()
    generate(text, 30_000, seed=5)
    path.write_text(text.getvalue(), encoding="utf-8")
    return path


def _fifo(tmp_path: Path, data: bytes) -> tuple[Path, threading.Thread]:
    """Return a named pipe and the thread that writes *data* into it once a reader opens it."""
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("wb") as f:
            f.write(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return fifo, writer


def test_maillog_reads_pipes_stdin_fifos_and_process_substitution_like_the_file(
    tmp_path: Path, mail_log: Path
) -> None:
    """`ingest maillog` over -, /dev/stdin, <(cat), a FIFO and gzip on stdin reports what the file gives."""
    args = ["ingest", "maillog", "--dry-run", "--now", NOW]
    want = _summary(_run(tmp_path, [*args, str(mail_log)]))
    assert want and not want[0].startswith("0 lines"), want
    data = mail_log.read_bytes()
    assert _summary(_run(tmp_path, [*args, "-"], stdin=data)) == want
    assert _summary(_run(tmp_path, [*args, "/dev/stdin"], stdin=data)) == want
    assert _summary(_run(tmp_path, [*args, f"<(cat {mail_log})"], shell=True)) == want
    assert _summary(_run(tmp_path, [*args, "-"], stdin=gzip.compress(data))) == want
    fifo, writer = _fifo(tmp_path, data)
    assert _summary(_run(tmp_path, [*args, str(fifo)])) == want
    writer.join(5)


def test_maillog_stores_from_stdin_and_orders_it_among_files(
    tmp_path: Path, mail_log: Path
) -> None:
    """A real ingest of the log split into a file and stdin stores the evidence the whole file gives."""
    (tmp_path / "a").mkdir()
    whole = _summary(_run(tmp_path / "a", ["ingest", "maillog", "--now", NOW, str(mail_log)]))
    lines = mail_log.read_bytes().splitlines(keepends=True)
    newer = tmp_path / "b"
    newer.mkdir()
    (newer / "newer.log").write_bytes(b"".join(lines[15_000:]))
    # the older half comes on stdin, given after the newer file: it is still read first
    split = _run(newer, ["ingest", "maillog", "--now", NOW, str(newer / "newer.log"), "-"], stdin=b"".join(lines[:15_000]))  # fmt: skip
    assert _summary(split)[-1] == whole[-1]
    assert whole[-1] != "evidence: 0"


def test_stdin_twice_and_follow_on_a_pipe_are_refused_with_the_fix(tmp_path: Path) -> None:
    """`-` given twice, and --follow on standard input, stop with a message saying what to do."""
    base = [sys.executable, "-m", "reputable", "--config", str(_config(tmp_path))]
    twice = subprocess.run([*base, "ingest", "maillog", "-", "-"], input=b"", capture_output=True, timeout=60, check=False)  # fmt: skip
    assert twice.returncode != 0
    assert "give it once" in twice.stderr.decode() + twice.stdout.decode()
    follow = subprocess.run([*base, "ingest", "maillog", "--follow", "-"], input=b"", capture_output=True, timeout=60, check=False)  # fmt: skip
    assert follow.returncode != 0
    assert "without it" in follow.stderr.decode() + follow.stdout.decode()
    assert "Traceback" not in twice.stderr.decode() + follow.stderr.decode()


def test_netlog_reads_pipes_stdin_fifos_and_process_substitution_like_the_file(
    tmp_path: Path,
) -> None:
    """`ingest netlog` (sshd fast path and the line parsers) reads -, /dev/stdin, <(cat) and a FIFO like the file."""
    for fmt, sample in (("sshd", "sshd.log"), ("nginx", "nginx.log")):
        path = SAMPLES / sample
        args = ["ingest", "netlog", "-f", fmt, "--dry-run", "--now", NOW]

        def counts(out: str) -> str:
            found = re.search(r"\): (\d+) lines in .*?; (.*)", out)
            assert found is not None, out
            return f"{found[1]} {found[2]}"

        want = counts(_run(tmp_path, [*args, str(path)]))
        assert not want.startswith("0 lines"), want
        data = path.read_bytes()
        assert counts(_run(tmp_path, [*args, "-"], stdin=data)) == want
        assert counts(_run(tmp_path, [*args, "/dev/stdin"], stdin=data)) == want
        assert counts(_run(tmp_path, [*args, f"<(cat {path})"], shell=True)) == want
        fifo, writer = _fifo(tmp_path, data)
        assert counts(_run(tmp_path, [*args, str(fifo)])) == want
        writer.join(5)
        fifo.unlink()


def test_arf_reads_a_report_and_an_mbox_from_stdin_and_a_fifo(tmp_path: Path) -> None:
    """`ingest arf -` reads one report, or an mbox of them, exactly once from a pipe or a FIFO."""
    report = (SAMPLES / "arf" / "rfc5965-b1.eml").read_bytes()
    other = (SAMPLES / "arf" / "dkim-signed.eml").read_bytes()
    args = ["ingest", "arf", "--dry-run"]
    assert "1 reports read: 1 evidence" in _run(tmp_path, [*args, "-"], stdin=report)
    mbox = b"From a@b Sat Jan  3 12:00:00 2026\n" + report + b"\nFrom c@d Sat Jan  3 12:00:01 2026\n" + other  # fmt: skip
    assert "2 reports read: 2 evidence" in _run(tmp_path, [*args, "/dev/stdin"], stdin=mbox)
    fifo, writer = _fifo(tmp_path, mbox)
    assert "2 reports read: 2 evidence" in _run(tmp_path, [*args, str(fifo)])
    writer.join(5)


def test_an_overlong_line_is_cut_and_the_next_lines_kept(tmp_path: Path) -> None:
    """A line longer than MAX_LINE is cut there; the lines after it come out whole (bounded memory)."""
    path = tmp_path / "long.log"
    path.write_bytes(b"first\n" + b"x" * (3 * MAX_LINE + 5) + b"\nafter\nlast")
    lines = "".join(read_chunks(path, chunk_bytes=1 << 16)).splitlines()
    assert lines[0] == "first"
    assert lines[1] == "x" * MAX_LINE
    assert lines[2:] == ["after", "last"]
