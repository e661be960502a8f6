"""The `reputable` entry point: global options, sub-commands, and errors without tracebacks."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Final

import typer

from reputable import __version__
from reputable.cli.common import (
    Format,
    JsonOpt,
    PlainOpt,
    State,
    action_format,
    err_console,
    show_records,
    show_result,
    state,
)
from reputable.cli.launch import command_word
from reputable.cli.listing import allow_app, list_app
from reputable.config import DEFAULT_TOML
from reputable.core import log
from reputable.core.errors import ReputableError, exit_code_of
from reputable.store.dsn import open_store

app = typer.Typer(
    name="reputable",
    help="Self-hosted IP reputation and DNS blocklist (DNSBL/RBL).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
snapshot_app = typer.Typer(
    help="The in-memory image the DNS server answers from.", no_args_is_help=True
)
app.add_typer(list_app, name="list")
app.add_typer(allow_app, name="allow")
app.add_typer(snapshot_app, name="snapshot")

#: Command groups registered by their own modules: module -> the top-level words it adds.
#: Only the module owning the command being run is imported (the checker's libraries
#: alone cost ~0.3 s); `--help` and unknown words import them all.
PLUGINS: dict[str, frozenset[str]] = {
    "reputable.cli.policy": frozenset({"evidence", "policy", "delist", "hosting", "explain"}),
    "reputable.cli.ingest": frozenset({"ingest", "report"}),
    "reputable.cli.transfer": frozenset({"import", "export"}),
    "reputable.cli.check": frozenset({"check", "watch"}),
    "reputable.cli.feeds": frozenset({"feed"}),
    "reputable.cli.probe": frozenset({"probe"}),
    "reputable.cli.integrate": frozenset({"integrate"}),
    "reputable.cli.token": frozenset({"token"}),
    "reputable.cli.store": frozenset({"store"}),
    "reputable.cli.ops": frozenset({"status", "reload"}),
    "reputable.cli.config": frozenset({"config"}),
}


def version_line() -> str:
    """Return what ``--version`` prints: ``reputable X.Y.Z``."""
    return f"reputable {__version__}"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", envvar="REPUTABLE_CONFIG", help="Config file [./reputable.toml]."),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING.")] = "INFO",
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """reputable: evidence in, explained listings out, published as a standards-compliant DNSBL."""
    ctx.obj = State(config_path=config)
    log.setup(log_level)


@app.command()
def version(as_json: JsonOpt = False, plain: PlainOpt = False) -> None:
    """Print the version (same as --version): reputable X.Y.Z."""
    show_result(action_format(as_json, plain), {"version": __version__}, version_line())


@app.command()
def init(
    path: Annotated[Path, typer.Option("--path", help="Where to write.")] = Path("reputable.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Write a reputable.toml with the defaults: embedded SQLite, default zones and ports."""
    fmt = action_format(as_json, plain)
    if path.exists() and not force:
        show_result(
            fmt,
            {"path": str(path), "written": False},
            f"{path} exists; left as it is (--force writes the defaults over it)",
        )
        return
    path.write_text(DEFAULT_TOML, encoding="utf-8")
    show_result(fmt, {"path": str(path), "written": True}, f"wrote {path}; next: `reputable serve`")


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    metrics: Annotated[
        str, typer.Option("--metrics", help="HOST:PORT for Prometheus /metrics; empty to disable.")
    ] = "127.0.0.1:9153",
) -> None:
    """Run the DNSBL server (DNS on dns.listen, UDP+TCP; HTTP API on http.listen) until Ctrl-C."""
    from reputable.app import serve  # the composition root: only the commands that run it

    serve(state(ctx).config, metrics_listen=metrics or None)


@snapshot_app.command("build")
def snapshot_build(ctx: typer.Context, as_json: JsonOpt = False, plain: PlainOpt = False) -> None:
    """Rebuild the snapshot file from the store now (serve does this by itself)."""
    from reputable.builder import publish_now

    fmt = action_format(as_json, plain)
    result = publish_now(state(ctx).config)
    record = {
        "serial": result.serial,
        "listings": result.listings,
        "allows": result.allows,
        "seconds": round(result.seconds, 3),
        "path": str(result.path),
    }
    show_result(
        fmt,
        record,
        f"snapshot serial {result.serial}: {result.listings} listings, {result.allows} allowlist"
        f" entries in {result.seconds * 1000:.0f} ms -> {result.path}",
    )


def samples(text: str) -> list[dict[str, object]]:
    """Return the samples of Prometheus text: name, labels (as written) and value."""
    found: list[dict[str, object]] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name, _, labels = series.partition("{")
        number = float(value)
        found.append(
            {
                "name": name,
                "labels": labels.rstrip("}"),
                "value": int(number) if number.is_integer() else number,
            }
        )
    return found


@app.command()
def stats(ctx: typer.Context, as_json: JsonOpt = False, plain: PlainOpt = False) -> None:
    """Print the DNS counters the DNS workers last wrote, in Prometheus text format.

    Read from the workers' counter files in data_dir, so after serve stops they are its last
    counters (`reputable status` says whether serve runs). --json prints the samples as [{"name", "labels", "value"}]; --plain one
    ``name<TAB>labels<TAB>value`` line each.
    """
    from reputable.publication.dnsbl.worker import metrics_path
    from reputable.publication.metrics import read_worker_files, render

    fmt = action_format(as_json, plain)
    config = state(ctx).config
    store = open_store(config, read_only=True)
    try:
        paths = [metrics_path(config, i) for i in range(config.dns.workers)]
        text = render(read_worker_files(paths), serial=store.serial())
    finally:
        store.close()
    if fmt is Format.TABLE:
        typer.echo(text, nl=False)
    else:
        show_records(fmt, samples(text), ("name", "labels", "value"))


#: Commands defined in this module: running one of them skips importing the plug-ins (the
#: checker's libraries alone cost ~0.3 s and ~35 MB).
CORE_COMMANDS = frozenset({"serve", "snapshot", "list", "allow", "init", "version", "stats"})


def _register_plugins(word: str | None, argv: Sequence[str] = ()) -> None:
    """Import the plug-in modules that own *word* (all of them when none does).

    A plug-in with ``register_only(app, argv)`` (`ingest`) imports only the module of the
    sub-command named on *argv*.
    """
    owners = [m for m, words in PLUGINS.items() if word in words]
    for module_name in owners or list(PLUGINS):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        register_only = getattr(module, "register_only", None)
        if owners and register_only is not None:
            register_only(app, argv)
        else:
            module.register(app)


#: Shells whose completion script `--show-completion SHELL` prints (Typer's scripts).
SHELLS: Final = ("bash", "zsh", "fish", "powershell", "pwsh")


def _completion_for_named_shell(argv: Sequence[str]) -> None:
    """Carry out ``--show-completion SHELL`` / ``--install-completion SHELL`` for that shell.

    With shellingham installed, Typer takes both as flags and detects the shell from the
    parent processes: the SHELL word was ignored (zsh users asking for bash got zsh), and
    with no shell among the ancestors (cron, a Dockerfile's RUN, Ansible, a daemon) it
    failed with "Shell  not supported". Exits when it handled the request.
    """
    for flag in ("--show-completion", "--install-completion"):
        if flag not in argv:
            continue
        at = list(argv).index(flag)
        shell = argv[at + 1] if at + 1 < len(argv) else ""
        if shell not in SHELLS:
            return  # no shell named: Typer detects it
        # Where Typer defines them (typer.completion only re-imports them).
        from typer._completion_shared import get_completion_script, install

        if flag == "--show-completion":
            script = get_completion_script(
                prog_name="reputable", complete_var="_REPUTABLE_COMPLETE", shell=shell
            )
            sys.stdout.write(script + "\n")
        else:
            shell, path = install(
                shell=shell, prog_name="reputable", complete_var="_REPUTABLE_COMPLETE"
            )
            print(f"{shell} completion installed in {path}")
        sys.exit(0)


def main() -> None:
    """Run the CLI; errors print one plain line, never a traceback (exit codes: docs/cli.md).

    What the user gave (an option, a file, the config) exits 2; what failed while running
    (the store, a running server) exits 3.
    """
    try:
        _completion_for_named_shell(sys.argv[1:])
        word = command_word(sys.argv[1:])
        # `--version` alone needs no command: the plug-ins cost ~1 s of CPU (all of them).
        version_only = word is None and "--version" in sys.argv and "--help" not in sys.argv
        if word not in CORE_COMMANDS and not version_only:
            _register_plugins(word, sys.argv[1:])
        # The name completion scripts and usage lines use, also under `python -m reputable`.
        app(prog_name="reputable")
    except ReputableError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(exit_code_of(exc))
    except KeyboardInterrupt:
        sys.exit(130)
