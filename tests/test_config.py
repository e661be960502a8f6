"""reputable.toml parsing."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from reputable.config import DEFAULT_TOML, load_config, parse_config
from reputable.core.cause import Cause
from reputable.core.errors import ConfigError


def test_defaults_match_design(tmp_path: Path) -> None:
    """The default file gives the zones, codes and ports docs/causes.md and README.md name."""
    config = parse_config(DEFAULT_TOML, tmp_path / "reputable.toml")
    assert config.ip_zone.name == "bl.reputable.test"
    assert config.domain_zone.name == "dbl.reputable.test"
    assert config.allow_zone.name == "wl.reputable.test"
    assert config.ip_zone.codes[Cause.SPAM] == IPv4Address("127.0.0.2")
    assert config.ip_zone.codes[Cause.MANUAL] == IPv4Address("127.0.0.10")
    assert config.domain_zone.codes[Cause.MALWARE_HOST] == IPv4Address("127.0.1.7")
    assert config.dns.listen == (("127.0.0.1", 5300),)
    assert config.store_dsn == f"sqlite:///{tmp_path.resolve()}/reputable.db"


def test_code_override(tmp_path: Path) -> None:
    """A zone's codes can be overridden per cause."""
    text = DEFAULT_TOML.replace("[zones.ip]\n", '[zones.ip]\ncodes = { spam = "127.0.0.20" }\n')
    config = parse_config(text, tmp_path / "r.toml")
    assert config.ip_zone.codes[Cause.SPAM] == IPv4Address("127.0.0.20")
    assert config.ip_zone.codes[Cause.HARVEST] == IPv4Address("127.0.0.3")


def test_code_outside_loopback_is_refused(tmp_path: Path) -> None:
    """Return codes outside 127/8, or 127.0.0.1, are configuration errors."""
    text = DEFAULT_TOML.replace("[zones.ip]\n", '[zones.ip]\ncodes = { spam = "10.0.0.2" }\n')
    with pytest.raises(ConfigError, match=r"codes\.spam = 10\.0\.0\.2"):
        parse_config(text, tmp_path / "r.toml")


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    """A syntax error names the file."""
    path = tmp_path / "reputable.toml"
    path.write_text("[dns\n")
    with pytest.raises(ConfigError, match=r"reputable\.toml"):
        load_config(path)


def test_toml_error_reads_as_the_file_does(tmp_path: Path) -> None:
    """A table declared twice names the line and the table as written, not a Python tuple."""
    path = tmp_path / "reputable.toml"
    path.write_text(DEFAULT_TOML + "\n[dns]\nworkers = 2\n")
    line = (DEFAULT_TOML + "\n[dns]").count("\n") + 1
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert f"reputable.toml line {line}: Cannot declare [dns] twice" in text
    assert "('dns',)" not in text
    assert '"":' not in text


def test_missing_explicit_config(tmp_path: Path) -> None:
    """An explicit config path that does not exist says how to create one."""
    with pytest.raises(ConfigError, match="reputable init"):
        load_config(tmp_path / "nope.toml")


def test_bad_access_action(tmp_path: Path) -> None:
    """Access rules accept only answer, refuse or ignore."""
    text = DEFAULT_TOML.replace(
        'action = "answer" },\n  { network = "::/0"', 'action = "drop" },\n  { network = "::/0"'
    )
    with pytest.raises(ConfigError, match="answer, refuse or ignore"):
        parse_config(text, tmp_path / "r.toml")


def test_init_is_idempotent(tmp_path: Path) -> None:
    """`reputable init` writes the defaults once and leaves an existing file alone."""
    import subprocess
    import sys

    def init(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reputable", "init", *extra],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    assert init().returncode == 0
    (tmp_path / "reputable.toml").write_text(DEFAULT_TOML + "\n# mine\n")
    again = init()
    assert again.returncode == 0 and "left as it is" in again.stdout
    assert (tmp_path / "reputable.toml").read_text().endswith("# mine\n")
    assert init("--force").returncode == 0
    assert (tmp_path / "reputable.toml").read_text() == DEFAULT_TOML
