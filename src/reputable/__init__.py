"""reputable: a self-hosted IP reputation and DNS blocklist system."""

__version__ = "0.1.0"
