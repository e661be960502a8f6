"""`reputable export nftables|ipset|rpz` from the store, checked by the real tools' parsers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import dns.zone
import pytest

from reputable.testing import cli, free_port, write_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration whose store holds an IPv4, an IPv6 and a domain listing."""
    path = write_config(tmp_path, dns_port=free_port())
    cli(path, "list", "add", "192.0.2.0/24", "--cause", "compromised")
    cli(path, "list", "add", "2001:db8::/48", "--cause", "spam")
    cli(path, "list", "add", "bad.example", "--cause", "malware_host")
    cli(path, "allow", "add", "192.0.2.9")
    return path


def test_export_nftables_file_passes_nft_check(config: Path, tmp_path: Path) -> None:
    """The written script is accepted by `nft -c -f` and holds the allowlist hole."""
    out = tmp_path / "bl.nft"
    cli(config, "export", "nftables", "-o", str(out), "--hook", "input", "--hook", "forward")
    text = out.read_text()
    assert "192.0.2.0-192.0.2.8, 192.0.2.10-192.0.2.255" in text
    assert "chain forward {" in text
    if shutil.which("nft") is None:
        pytest.skip("needs nft (Debian package nftables)")
    check = subprocess.run(
        ["nft", "-c", "-f", str(out)], check=False, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_export_ipset_and_rpz_to_stdout(config: Path) -> None:
    """ipset and rpz print to stdout; --cause narrows what is exported."""
    ipset_text = cli(config, "export", "ipset", "--cause", "spam").stdout
    assert "add reputable6-new 2001:db8::/48" in ipset_text
    assert "192.0.2." not in ipset_text
    rpz_text = cli(config, "export", "rpz", "--origin", "rpz.example.").stdout
    zone = dns.zone.from_text(rpz_text, origin="rpz.example.", relativize=False)
    assert zone.find_rdataset("*.bad.example.rpz.example.", "CNAME")


def test_export_refuses_bad_options(config: Path) -> None:
    """Unknown causes and bad nft names are one-line errors naming the fix."""
    done = cli(config, "export", "rpz", "--cause", "nonsense", check=False)
    assert done.returncode == 2
    assert "--cause" in done.stderr
    done = cli(config, "export", "nftables", "--table", "bad name", check=False)
    assert done.returncode == 2
    assert "letters, digits and _" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_export_rbldnsd_refuses_stdout(config: Path) -> None:
    """rbldnsd's data are several files: `-o -` is refused, and no file named "-" is written."""
    done = cli(config, "export", "rbldnsd", "-z", "bl.reputable.test", "-o", "-", check=False)
    assert done.returncode == 2 and "give a file path" in done.stderr
    assert not list(config.parent.glob("-*")) and not Path("-").exists()
