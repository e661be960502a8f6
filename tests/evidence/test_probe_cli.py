"""`reputable probe ...` and `reputable feed ...` through their Typer commands, on loopback only."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from reputable.cli import feeds, probe
from reputable.cli.common import State
from reputable.config import DEFAULT_TOML
from reputable.core.errors import InputError
from tests.evidence.probe_servers import SmtpTarget, start_relay, stop


def app() -> typer.Typer:
    """Return a CLI with a --config option and the feed and probe commands registered."""
    cli = typer.Typer()

    @cli.callback()
    def root(
        ctx: typer.Context, config: Annotated[Path, typer.Option("--config")] = Path("x.toml")
    ) -> None:
        """Carry the config path like the real entry point does."""
        ctx.obj = State(config_path=config)

    feeds.register(cli)
    probe.register(cli)
    return cli


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config file with its store in *tmp_path* and a short probe timeout."""
    path = tmp_path / "reputable.toml"
    path.write_text(DEFAULT_TOML + '\n[probes]\ntimeout = "2s"\n', encoding="utf-8")
    return path


@pytest.fixture
def relay() -> Iterator[SmtpTarget]:
    """An open aiosmtpd relay on 127.0.0.2, served from a background event loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    target = asyncio.run_coroutine_threadsafe(start_relay("127.0.0.2", closed=False), loop).result(
        5
    )
    yield target
    asyncio.run_coroutine_threadsafe(stop(target.server), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_probe_relay_json_reports_an_open_relay(config: Path, relay: SmtpTarget) -> None:
    """--json prints target, result and transcript; --allow widens the allow-list for the run."""
    where = f"127.0.0.2:{relay.port}"
    result = CliRunner().invoke(
        app(),
        ["--config", str(config), "probe", "relay", where, "--json", "--allow", "127.0.0.2/32"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["target"], data["result"]) == (where, "open")
    assert [line for line in data["transcript"] if line.startswith("C: ")][-2:] == [
        "C: RSET",
        "C: QUIT",
    ]
    assert data["transcript"][-1].startswith("-- open: the server accepted mail")
    assert not relay.handler.data_seen
    assert "DATA" not in relay.commands()


def test_probe_outside_allow_list_is_refused_with_exit_2(config: Path) -> None:
    """A target outside the allow-list prints result refused and exits 2 without connecting."""
    result = CliRunner().invoke(
        app(), ["--config", str(config), "probe", "proxy", "198.51.100.80:3128", "--json"]
    )
    assert result.exit_code == 2
    data = json.loads(result.output)
    assert (data["target"], data["result"]) == ("198.51.100.80:3128", "refused")
    assert "outside the allow-list" in data["transcript"][0]


def test_probe_takes_addresses_not_names(config: Path) -> None:
    """A host name as target is an input error that says to use an address."""
    result = CliRunner().invoke(
        app(), ["--config", str(config), "probe", "relay", "mx.example.test"]
    )
    assert isinstance(result.exception, InputError)
    assert "never a host name" in str(result.exception)


def test_feed_commands_add_list_sync_remove(config: Path, tmp_path: Path) -> None:
    """feed add syncs at once, list shows the state, a broken sync exits 3, remove delists."""
    listing = tmp_path / "list.txt"
    listing.write_text("192.0.2.1\n192.0.2.2 # scanner\n", encoding="utf-8")
    run = CliRunner()
    base = ["--config", str(config), "feed"]
    added = run.invoke(app(), [*base, "add", "local", listing.as_uri(), "--kind", "plain"])
    assert added.exit_code == 0, added.output
    assert "+2 -0" in added.output
    listing.write_text("<html>oops</html>\n", encoding="utf-8")
    broken = run.invoke(app(), [*base, "sync", "--json"])
    assert broken.exit_code == 3  # a runtime failure (docs/cli.md "Exit codes")
    assert json.loads(broken.stdout)[0]["status"] == "error"
    [row] = json.loads(run.invoke(app(), [*base, "list", "--json"]).output)
    assert (row["name"], row["kind"], row["entries"]) == ("local", "plain", 2)
    assert "unreadable" in row["last_error"]
    removed = run.invoke(app(), [*base, "remove", "local"])
    assert "its 2 listings" in removed.output
    assert json.loads(run.invoke(app(), [*base, "list", "--json"]).output) == []


def test_feed_add_rejects_unknown_kind_and_scheme(config: Path) -> None:
    """Bad --kind and unsupported URL schemes are refused with the valid choices."""
    run = CliRunner()
    base = ["--config", str(config), "feed", "add", "x"]
    kind = run.invoke(app(), [*base, "file:///tmp/x", "--kind", "rbl"])
    assert "use one of plain, drop" in str(kind.exception)
    scheme = run.invoke(app(), [*base, "ftp://127.0.0.1/x", "--kind", "plain"])
    assert "use file:///" in str(scheme.exception)
