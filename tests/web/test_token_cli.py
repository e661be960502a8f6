"""`reputable token`: secrets shown once, stored only as digests, names and scopes checked."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from reputable.store.sqlite_tokens import TokenRecord
from reputable.testing import cli, free_port, write_config
from reputable.web.tokens import authenticate, digest


def test_token_lifecycle_stores_only_a_digest(tmp_path: Path) -> None:
    """add prints a secret whose SHA-256 alone is stored; list never shows it; revoke marks it."""
    config = write_config(tmp_path, dns_port=free_port())
    secret = cli(config, "token", "add", "ingest-1", "--scope", "evidence:write").stdout.strip()
    assert secret.startswith("rpt_") and len(secret) > 40
    with sqlite3.connect(tmp_path / "reputable.db") as db:
        rows = db.execute("SELECT name, digest, scopes FROM api_tokens").fetchall()
    assert rows == [("ingest-1", hashlib.sha256(secret.encode()).hexdigest(), "evidence:write")]
    assert secret not in (tmp_path / "reputable.db").read_bytes().decode("latin-1")
    listed = json.loads(cli(config, "token", "list", "--json").stdout)
    assert [t["name"] for t in listed] == ["ingest-1"] and listed[0]["revoked_at"] is None
    assert secret not in cli(config, "token", "list").stdout
    cli(config, "token", "revoke", "ingest-1")
    assert json.loads(cli(config, "token", "list", "--json").stdout)[0]["revoked_at"]


def test_token_errors_are_one_clear_line(tmp_path: Path) -> None:
    """A bad scope, a bad name, a taken name and an unknown revoke exit 2 with the fix."""
    config = write_config(tmp_path, dns_port=free_port())
    cli(config, "token", "add", "ops", "--scope", "admin")
    cases = [
        (("token", "add", "x", "--scope", "root"), "unknown scope 'root'"),
        (("token", "add", "bad name!", "--scope", "admin"), "token name"),
        (("token", "add", "ops", "--scope", "admin"), "exists"),
        (("token", "revoke", "nobody"), "no valid token"),
    ]
    for args, message in cases:
        result = cli(config, *args, check=False)
        assert result.returncode == 2, result
        assert message in result.stderr and "Traceback" not in result.stderr


def test_authenticate_checks_every_digest_and_revocation() -> None:
    """Only a valid, unrevoked token matches its own secret."""
    records = [
        TokenRecord("a", digest("rpt_a"), frozenset({"admin"}), 0.0, None),
        TokenRecord("b", digest("rpt_b"), frozenset({"bouncer"}), 0.0, 5.0),
    ]
    assert authenticate(records, "rpt_a") == records[0]
    assert authenticate(records, "rpt_b") is None  # revoked
    assert authenticate(records, "rpt_c") is None
