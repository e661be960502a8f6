"""``python -m reputable`` runs the CLI."""

from reputable.cli.main import main

main()
