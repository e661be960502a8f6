"""Two ingests of the same evidence at once into one PostgreSQL store lose and duplicate nothing.

Each ingest is a real `reputable evidence import` process; the idempotency key (the
evidence table's unique ``key``) must hold under concurrency, whatever order the two
processes write in.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reputable.testing import free_port, write_config
from tests.store.pgnodes_db import fresh_database

LINES = 4000


def evidence_lines() -> list[str]:
    """LINES spam-trap hits with explicit ids on 400 addresses."""
    return [
        json.dumps(
            {
                "subject": f"198.51.{100 + i % 4}.{i % 100 + 1}",
                "cause": "spam",
                "source": "traps",
                "at": f"2026-11-29T08:{i // 1000:02d}:{i % 60:02d}Z",
                "detail": {"trap": f"t{i}@example.net"},
                "id": f"trap-{i}",
            }
        )
        for i in range(LINES)
    ]


def _import(config: Path, path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reputable",
            "--config",
            str(config),
            "evidence",
            "import",
            str(path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("order", ["same", "reversed"])
def test_two_concurrent_imports_of_one_file(tmp_path: Path, order: str) -> None:
    import psycopg

    lines = evidence_lines()
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("\n".join(lines) + "\n")
    second.write_text("\n".join(lines if order == "same" else lines[::-1]) + "\n")
    with fresh_database() as dsn:
        config = write_config(tmp_path, dns_port=free_port())
        config.write_text(
            config.read_text().replace('dsn = "sqlite:///reputable.db"', f'dsn = "{dsn}"')
        )
        # Migrate first, so the two racing processes race on evidence, not on the schema.
        subprocess.run(
            [sys.executable, "-m", "reputable", "--config", str(config), "list", "show"],
            check=True,
            capture_output=True,
        )
        procs = [_import(config, first), _import(config, second)]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        stored = [int(re.search(r"(\d+) new evidence stored", o).group(1)) for o in outputs]  # type: ignore[union-attr]
        assert sum(stored) == LINES, outputs  # each fact counted new by exactly one of them
        with psycopg.connect(dsn) as conn:
            total, keys = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT key) FROM evidence"
            ).fetchone()  # type: ignore[misc]
            ids = {k for (k,) in conn.execute("SELECT detail::jsonb->>'trap' FROM evidence")}
        assert total == keys == LINES  # nothing duplicated
        assert ids == {f"t{i}@example.net" for i in range(LINES)}  # nothing lost
