"""The CLI contract: every reporting command has --json/--plain, one meaning per flag, exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from reputable import __version__
from reputable.cli import main as cli_main
from reputable.testing import free_port
from tests.cli.conftest import Cli
from tests.conftest import sqlite_only

#: Commands that report nothing a script would parse, and why.
NOT_REPORTING = {
    "serve": "runs the server until stopped; it logs, it does not report",
    "watch": "runs until stopped and alerts; its round lines go to stderr",
    "integrate": "prints configuration for another program: that text is the output format",
}


def commands() -> Iterator[tuple[str, Any]]:
    """Yield (full name, command) for every leaf command, with every plug-in registered."""
    cli_main._register_plugins(None)
    root = typer.main.get_command(cli_main.app)

    def walk(group: Any, prefix: str) -> Iterator[tuple[str, Any]]:
        # Typer vendors its own click: a group is what has sub-commands.
        subcommands = getattr(group, "commands", None)
        if subcommands is not None:
            for name, command in subcommands.items():
                yield from walk(command, f"{prefix} {name}".strip())
        else:
            yield prefix, group

    yield from walk(root, "")


def options(command: Any) -> dict[str, Any]:
    """Return the options of *command* by each of their long names."""
    return {
        name: param
        for param in command.params
        for name in (*param.opts, *getattr(param, "secondary_opts", []))
        if name.startswith("--")
    }


ALL = dict(commands())


def test_the_walk_finds_the_commands() -> None:
    """The walk sees the plug-in commands too (so the checks below cover them)."""
    assert {"list show", "ingest maillog", "feed sync", "probe relay", "export zone"} <= set(ALL)
    assert len(ALL) > 40


@pytest.mark.parametrize("name", sorted(set(ALL) - set(NOT_REPORTING)))
def test_every_reporting_command_has_json_and_plain(name: str) -> None:
    """Each command that reports something takes --json and --plain (docs/cli.md)."""
    found = options(ALL[name])
    assert "--json" in found and "--plain" in found, f"`reputable {name}` lacks --json/--plain"


# Commands whose own --config is the same TOML file as the global option (documented so).
CONFIG_FILE_COMMANDS = {"config check", "config show"}


def test_flag_names_mean_one_thing() -> None:
    """No --no-no-*, --config only as the global option (hidden aliases aside), --all only in check."""
    for name, command in ALL.items():
        found = options(command)
        assert not [o for o in found if o.startswith("--no-no-")], name
        config = found.get("--config")
        if name in CONFIG_FILE_COMMANDS:  # issue 15 spells `config check [--config F]`
            assert config is not None and config.help and "global --config" in config.help
        else:
            assert config is None or getattr(config, "hidden", False), f"{name}: visible --config"
        everything = found.get("--all")
        if everything is not None and name != "check":
            assert getattr(everything, "hidden", False), f"{name}: --all means something else"


def test_ingest_commands_share_their_flags() -> None:
    """Every ingest command spells --dry-run, --source, --now, --json, --plain the same way."""
    ingest = {n: options(c) for n, c in ALL.items() if n.startswith("ingest ")}
    assert set(ingest) >= {"ingest maillog", "ingest netlog", "ingest arf", "ingest journal"}
    for name, found in ingest.items():
        assert {"--dry-run", "--source", "--now", "--json", "--plain"} <= set(found), name
        if "--follow" in found:
            assert "--from-start" in found, f"{name}: --follow without --from-start"
        if "--format" in found:
            assert "-f" in found["--format"].opts, f"{name}: --format without -f"
    assert "--timezone" in ingest["ingest maillog"] and "--timezone" in ingest["ingest netlog"]


@sqlite_only  # no store involved: once is enough
def test_version_option_and_command(cli: Cli) -> None:
    """--version and `version` print "reputable X.Y.Z"."""
    for args in (("--version",), ("version",)):
        result = cli(*args, config=False)
        assert (result.code, result.out) == (0, f"reputable {__version__}\n")


@sqlite_only  # no store involved: once is enough
def test_shell_completion(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """--show-completion bash prints the bash hook; the hook's request completes sub-commands."""
    script = cli("--show-completion", "bash", config=False)
    assert script.code == 0
    assert "_REPUTABLE_COMPLETE=complete_bash" in script.out
    assert "complete -o default -F _reputable_completion reputable" in script.out
    monkeypatch.setenv("_REPUTABLE_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "reputable list sh")
    monkeypatch.setenv("COMP_CWORD", "2")
    assert cli(config=False).out.split() == ["show"]
    monkeypatch.setenv("COMP_WORDS", "reputable ingest mail")
    assert cli(config=False).out.split() == ["maillog"]


def test_show_completion_takes_the_named_shell(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--show-completion SHELL` prints that shell's script, whatever shell runs it or none
    (cron, a Dockerfile's RUN): Typer's detection alone ignored the word, or failed."""
    import shellingham

    def no_shell() -> tuple[str, str]:
        raise shellingham.ShellDetectionFailure()

    monkeypatch.setattr(shellingham, "detect_shell", no_shell)
    bash = cli("--show-completion", "bash", config=False)
    assert bash.code == 0 and "complete -o default -F _reputable_completion reputable" in bash.out
    monkeypatch.setattr(shellingham, "detect_shell", lambda: ("bash", "/bin/bash"))
    zsh = cli("--show-completion", "zsh", config=False)
    assert (
        zsh.code == 0 and "#compdef reputable" in zsh.out and "complete -o default" not in zsh.out
    )
    fish = cli("--show-completion", "fish", config=False)
    assert fish.code == 0 and "complete --command reputable" in fish.out


def test_exit_2_for_usage_and_input_errors(cli: Cli, tmp_path: Path) -> None:
    """A bad option, bad input, a bad config file and clashing formats exit 2, without traceback."""
    unknown = cli("list", "show", "--no-such-option")
    assert unknown.code == 2
    missing = cli("list", "remove", "192.0.2.77")
    assert missing.code == 2 and missing.err.startswith("error: 192.0.2.77 is not listed")
    bad_subject = cli("list", "show", "not-an-ip/99")
    assert bad_subject.code == 2 and "error:" in bad_subject.err
    both = cli("list", "show", "--json", "--plain")
    assert both.code == 2 and "choose one" in both.err
    broken = tmp_path / "broken.toml"
    broken.write_text("[dns\n", encoding="utf-8")
    bad_config = cli("--config", str(broken), "list", "show", config=False)
    assert bad_config.code == 2 and "Traceback" not in bad_config.err


def test_exit_3_for_runtime_failures(cli: Cli) -> None:
    """A server that does not answer (status) or does not run (reload) is exit 3."""
    down = cli("status", "--metrics", f"127.0.0.1:{free_port()}")
    assert down.code == 3 and "is serve running" in down.err
    no_pid = cli("reload")
    assert no_pid.code == 3 and no_pid.err.startswith("error: cannot read serve's pid")


def test_errors_keep_brackets(cli: Cli) -> None:
    """Error text is printed as is: brackets in it are not eaten as Rich markup."""
    result = cli("list", "add", "[192.0.2.1]", "-c", "spam")
    assert result.code == 2 and "[192.0.2.1]" in result.err
