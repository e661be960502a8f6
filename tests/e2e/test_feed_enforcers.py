"""fail2ban and CrowdSec in: the real fail2ban bans from a log, `feed sync` makes evidence."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reputable.store.dsn import open_dsn
from reputable.testing import cli, free_port, write_config
from tests.conftest import use_store

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "enforce"
STREAM = Path(__file__).resolve().parents[1] / "evidence" / "feed_samples" / "crowdsec_stream.json"


def auth_log() -> str:
    """Return the sample auth log with the current syslog time on every line."""
    stamp = datetime.now().strftime("%b %d %H:%M:%S")  # syslog local time
    lines = (SAMPLES / "auth.log.template").read_text().splitlines()
    return "\n".join(line.format(stamp=stamp) for line in lines if not line.startswith("#")) + "\n"


@contextmanager
def fail2ban(folder: Path, log: Path) -> Iterator[tuple[Path, Path]]:
    """Run fail2ban-server in the foreground with an sshd jail on *log*; yield (socket, db)."""
    conf = folder / "conf"
    shutil.copytree("/etc/fail2ban", conf)
    for extra in ("jail.d", "fail2ban.d"):
        shutil.rmtree(conf / extra, ignore_errors=True)
        (conf / extra).mkdir()
    sock, db = folder / "f2b.sock", folder / "f2b.sqlite3"
    (conf / "fail2ban.local").write_text(
        f"[Definition]\nloglevel = INFO\nlogtarget = {folder}/f2b.log\nsocket = {sock}\n"
        f"pidfile = {folder}/f2b.pid\ndbfile = {db}\n"
    )
    (conf / "jail.local").write_text(
        "[DEFAULT]\nbanaction = dummy\nbanaction_allports = dummy\nbackend = polling\n"
        "ignoreip =\n"
        f"[sshd]\nenabled = true\nport = ssh\nlogpath = {log}\nmaxretry = 3\nfindtime = 10m\n"
        "bantime = 1h\n"
    )
    proc = subprocess.Popen(
        ["fail2ban-server", "-f", "-x", "-c", str(conf), "-s", str(sock)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        yield sock, db
    finally:
        subprocess.run(
            ["fail2ban-client", "-c", str(conf), "-s", str(sock), "stop"],
            capture_output=True,
            check=False,
            timeout=30,
        )
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def banned(sock: Path) -> str:
    """Return `fail2ban-client banned` output (empty while the server is not up)."""
    done = subprocess.run(
        ["fail2ban-client", "-s", str(sock), "banned"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return done.stdout if done.returncode == 0 else ""


@pytest.fixture(scope="module")
def fail2ban_bans(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Let the real fail2ban ban 192.0.2.50 from a log; return (its database, client's list).

    Once per module: the store tests below read the same bans into each back-end.
    """
    for tool in ("fail2ban-server", "fail2ban-client"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (Debian package fail2ban)")
    folder = tmp_path_factory.mktemp("f2b")
    log = folder / "auth.log"
    log.write_text("")
    with fail2ban(folder, log) as (sock, db):
        deadline = time.monotonic() + 120  # the server's start: a jail must watch the log first
        while time.monotonic() < deadline and "sshd" not in banned(sock):
            time.sleep(0.2)
        assert "sshd" in banned(sock), (folder / "f2b.log").read_text()[-2000:]
        deadline = time.monotonic() + 60  # its own: the polling backend reads the log each second
        with log.open("a") as handle:
            handle.write(auth_log())
        while time.monotonic() < deadline and "192.0.2.50" not in banned(sock):
            time.sleep(0.2)
        client_view = banned(sock)
        assert "192.0.2.50" in client_view, (folder / "f2b.log").read_text()[-2000:]
        assert "198.51.100.60" not in client_view
        (folder / "banned.txt").write_text(client_view)
        copy = folder / "f2b-copy.sqlite3"  # fail2ban's database as it stands, while it runs
        with sqlite3.connect(db) as source, sqlite3.connect(copy) as target:
            source.backup(target)
    return copy, folder / "banned.txt"


@pytest.mark.slow
def test_real_fail2ban_ban_becomes_compromised_evidence(
    tmp_path: Path, store_dsn: str, fail2ban_bans: tuple[Path, Path]
) -> None:
    """fail2ban bans 192.0.2.50 from the log; `feed sync` on its database adds the evidence."""
    db, client_view = fail2ban_bans
    config = use_store(write_config(tmp_path, dns_port=free_port()), store_dsn)
    cli(config, "feed", "add", "f2b", f"file://{db}", "--kind", "fail2ban")
    cli(config, "feed", "add", "f2b-client", f"file://{client_view}", "--kind", "fail2ban")
    again = cli(config, "feed", "sync", "f2b").stdout
    store = open_dsn(store_dsn)
    try:
        rows = store._db.execute(
            "SELECT subject, cause, source, detail FROM evidence ORDER BY source"
        ).fetchall()
        listings = list(store.listings())
    finally:
        store.close()
    assert [(s, c, src) for s, c, src, _ in rows] == [
        ("192.0.2.50", "compromised", "feed:f2b"),
        ("192.0.2.50", "compromised", "feed:f2b-client"),
    ]
    assert json.loads(rows[0][3])["jail"] == "sshd"
    assert listings == []  # evidence for the policy engine, never a listing by itself
    assert again.startswith("f2b: ")
    assert "evidence" not in again  # a second sync of the same bans adds no evidence


@contextmanager
def lapi(key: str) -> Iterator[tuple[str, list[str]]]:
    """A stand-in CrowdSec Local API on loopback answering the decision stream to *key* only."""
    seen: list[str] = []
    stream = json.loads(STREAM.read_text())
    stream["new"] = [d for d in stream["new"] if d["value"] != "not-an-ip"]  # junk: own test
    body = json.dumps(stream).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the stdlib's name
            seen.append(self.path)
            ok = self.headers.get("X-Api-Key") == key and self.path.startswith(
                "/v1/decisions/stream"
            )
            self.send_response(200 if ok else 403)
            payload = body if ok else b'{"message":"access forbidden"}'
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # stdlib name
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", seen
    finally:
        server.shutdown()
        server.server_close()


def test_crowdsec_lapi_stream_with_bouncer_key(tmp_path: Path, store_dsn: str) -> None:
    """The crowdsec kind polls the stream with the configured X-Api-Key; a wrong key is an error."""
    with lapi("bouncer-key-123") as (base, seen):
        extra = f'[feeds]\napi_keys = {{ "{base}" = "bouncer-key-123" }}\n'
        config = use_store(write_config(tmp_path, dns_port=free_port(), extra=extra), store_dsn)
        url = base + "v1/decisions/stream?startup=true"
        added = cli(config, "feed", "add", "cs", url, "--kind", "crowdsec").stdout
        (tmp_path / "other").mkdir()
        wrong = write_config(tmp_path / "other", dns_port=free_port())  # no api_keys
        refused = cli(wrong, "feed", "add", "cs", url, "--kind", "crowdsec", check=False)
    assert seen[0] == "/v1/decisions/stream?startup=true"
    assert "error" not in added
    assert "403" in refused.stdout + refused.stderr
    store = open_dsn(store_dsn)
    try:
        rows = store._db.execute(
            "SELECT subject, cause, detail FROM evidence ORDER BY subject"
        ).fetchall()
    finally:
        store.close()
    assert [(s, c) for s, c, _ in rows] == [
        ("192.0.2.7", "compromised"),
        ("198.51.100.9", "spam"),
        ("2001:db8::8", "compromised"),
    ]
    assert json.loads(rows[0][2])["scenario"] == "crowdsecurity/ssh-bf"
