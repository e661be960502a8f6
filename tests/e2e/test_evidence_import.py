"""`reputable evidence import` over files larger than one batch (parsed in a second process)."""

from __future__ import annotations

import json
from pathlib import Path

from reputable.store.dsn import open_dsn
from reputable.testing import cli, free_port, write_config
from tests.conftest import use_store


def test_big_import_reports_bad_lines_and_keeps_good_ones(tmp_path: Path, store_dsn: str) -> None:
    """60,000 lines across two batches: bad lines are named by line number, the rest land once."""
    config = use_store(write_config(tmp_path, dns_port=free_port()), store_dsn)
    path = tmp_path / "evidence.jsonl"
    bad_lines = {7, 50_001, 59_999}
    with path.open("w") as fh:
        for n in range(1, 60_001):
            if n in bad_lines:
                fh.write('{"subject": "not an ip", "cause": "spam", "source": "t"\n')
                continue
            host = f"10.{n // 65536}.{(n // 256) % 256}.{n % 256}"
            fh.write(
                json.dumps(
                    {"subject": host, "cause": "spam", "source": "t", "at": "2026-11-01T00:00:00Z"}
                )
                + "\n"
            )
    result = cli(config, "evidence", "import", str(path), check=False)
    assert result.returncode == 1
    assert "60000 lines, 59997 new evidence stored, 3 bad lines" in result.stdout
    for n in sorted(bad_lines):
        assert f"evidence.jsonl:{n}:" in result.stdout
    again = cli(config, "evidence", "import", str(path), check=False)
    assert "0 new evidence stored" in again.stdout
    store = open_dsn(store_dsn)
    try:
        assert len(store.all_targets()) == 59_997  # one address per good line
    finally:
        store.close()
