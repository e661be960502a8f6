"""``python -m reputable`` runs the CLI."""

from reputable.cli.launch import main

main()
