"""The `reputable` command line (Typer); the only place the CLI library is imported."""
