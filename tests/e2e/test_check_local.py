"""`reputable check` asks our own server as a list and adds the local store's explanation."""

from __future__ import annotations

import json
from pathlib import Path

from reputable.testing import RunningServer, cli, free_port, write_config


def test_check_reports_public_style_and_local_verdict(tmp_path: Path) -> None:
    """The checker finds the address listed on the local zone and explains it from the store."""
    port = free_port()
    extra = (
        "[checker]\n"
        f'nameserver = "127.0.0.1:{port}"\n'
        "[[checker.zone]]\n"
        'name = "bl.reputable.test"\n'
        f'nameserver = "127.0.0.1:{port}"\n'
        'kind = "ip"\n'
    )
    config = write_config(tmp_path, dns_port=port, extra=extra)
    cli(config, "list", "add", "198.51.100.7", "--cause", "spam", "--reason", "trap hits")
    with RunningServer(config):
        result = cli(
            config,
            "check",
            "198.51.100.7",
            "--no-builtin",
            "--no-diagnostics",
            "--json",
            check=False,
        )
    assert result.returncode == 1, result.stderr  # exit 1: listed
    document = json.loads(result.stdout)
    (ours,) = [z for z in document["listings"] if z["zone"] == "bl.reputable.test"]
    assert ours["status"] == "listed" and "127.0.0.2" in ours["codes"]
    assert document["local"]["listed"] is True
    assert document["local"]["listings"][0]["reason"] == "trap hits"


def test_locally_listed_address_sets_exit_code_and_html(tmp_path: Path) -> None:
    """Listed in the local store means exit 1 and a "Local lists" section in the HTML report,
    even when the public lists give no answer (no server runs here)."""
    port = free_port()
    extra = (
        "[checker]\n"
        f'nameserver = "127.0.0.1:{port}"\n'
        "[[checker.zone]]\n"
        'name = "bl.reputable.test"\n'
        'kind = "ip"\n'
    )
    config = write_config(tmp_path, dns_port=port, extra=extra)
    cli(config, "list", "add", "198.51.100.7", "--cause", "spam", "--reason", "trap [hits]")
    page = tmp_path / "report.html"
    result = cli(
        config,
        "check",
        "198.51.100.7",
        "--no-builtin",
        "--no-diagnostics",
        "--timeout",
        "0.2",
        "--html",
        str(page),
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "trap [hits]" in result.stdout  # printed as text, not eaten as markup
    html = page.read_text()
    assert "Local lists" in html and "is LISTED here" in html and "trap [hits]" in html
