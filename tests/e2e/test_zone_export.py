"""`reputable export zone`: an RFC 1035 master file that NSD's own checker and dnspython read."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest

from reputable.testing import cli, free_port, write_config


def test_export_zone_writes_a_master_file_nsd_accepts(tmp_path: Path) -> None:
    """A range, a host inside it and an exclusion come out as wildcard, host and a cut name."""
    config = write_config(tmp_path, dns_port=free_port())
    data = tmp_path / "bl.ip4set"
    data.write_text(":127.0.0.2:spam from $\n192.0.2.0/24\n192.0.2.9 :127.0.0.4:bot\n!192.0.2.77\n")
    cli(config, "import", "rbldnsd", str(data), "--zone", "bl.reputable.test")
    out = tmp_path / "bl.zone"
    result = cli(config, "export", "zone", "--zone", "bl.reputable.test", "-o", str(out))
    assert "zone bl.reputable.test, serial" in result.stderr
    zone = dns.zone.from_text(out.read_text(), origin="bl.reputable.test", relativize=True)
    wildcard = zone.find_rdataset("*.2.0.192", dns.rdatatype.A)
    assert {r.address for r in wildcard} == {"127.0.0.2"}
    host = zone.find_rdataset("9.2.0.192", dns.rdatatype.A)
    assert {r.address for r in host} == {"127.0.0.2", "127.0.0.4"}  # the range covers it too
    cut = zone.get_node("77.2.0.192")
    assert cut is not None and cut.get_rdataset(dns.rdataclass.IN, dns.rdatatype.A) is None
    if shutil.which("nsd-checkzone") is None:
        pytest.skip("needs nsd-checkzone (Debian package nsd)")
    check = subprocess.run(
        ["nsd-checkzone", "bl.reputable.test", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_export_zone_from_serves_snapshot_is_the_file_a_private_build_writes(
    tmp_path: Path,
) -> None:
    """With a current snapshot the export reads it (no build of its own); the file is the one
    a private build writes (--now forces that)."""
    config = write_config(tmp_path, dns_port=free_port())
    data = tmp_path / "bl.ip4set"
    data.write_text(":127.0.0.2:spam from $\n192.0.2.0/24\n192.0.2.9 :127.0.0.4:bot\n!192.0.2.77\n")
    cli(config, "import", "rbldnsd", str(data), "--zone", "bl.reputable.test")
    cli(config, "snapshot", "build")
    served, private = tmp_path / "served.zone", tmp_path / "private.zone"
    cli(config, "export", "zone", "--zone", "bl.reputable.test", "-o", str(served))
    later = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    cli(config, "export", "zone", "-z", "bl.reputable.test", "--now", later, "-o", str(private))
    assert served.read_text() == private.read_text()
    assert "*.2.0.192\tA\t127.0.0.2" in served.read_text()


def test_export_zone_names_the_zones_it_knows(tmp_path: Path) -> None:
    """An unknown zone is one line naming the zones of the configuration, no traceback."""
    config = write_config(tmp_path, dns_port=free_port())
    result = cli(config, "export", "zone", "--zone", "nope.test", "-o", "-", check=False)
    assert result.returncode == 2
    assert "bl.reputable.test" in result.stderr and "Traceback" not in result.stderr
