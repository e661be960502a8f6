"""`reputable integrate TARGET`: print ready configuration for an MTA, filter, resolver or firewall."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reputable.cli.common import state
from reputable.core.errors import InputError
from reputable.publication.integrations import TARGETS
from reputable.publication.integrations.context import context_of


def register(app: typer.Typer) -> None:
    """Add the ``integrate`` command to *app*."""
    app.command("integrate")(integrate)


def integrate(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help=", ".join(TARGETS) + ".")],
    rpz_file: Annotated[
        Path | None,
        typer.Option("--rpz-file", help="Where the RPZ export lives [DATA_DIR/bl.rpz]."),
    ] = None,
    nft_file: Annotated[
        Path | None,
        typer.Option("--nft-file", help="Where the nftables sink writes [DATA_DIR/bl.nft]."),
    ] = None,
) -> None:
    """Print working configuration for TARGET using this server's zones, codes and addresses."""
    render = TARGETS.get(target.lower())
    if render is None:
        raise InputError(f"integrate {target!r}: unknown target; use one of {', '.join(TARGETS)}")
    context = context_of(
        state(ctx).config,
        rpz_file=rpz_file.resolve() if rpz_file else None,
        nft_file=nft_file.resolve() if nft_file else None,
    )
    typer.echo(render(context), nl=False)
