"""The one error tree of reputable.

::

    ReputableError                 every error a user may see; message says what and how to fix
    ├── ConfigError                reputable.toml is missing, unreadable or invalid
    ├── InputError                 a value given by a user (CLI argument, API field) is invalid
    │   ├── SubjectError           not an IP, CIDR or domain name
    │   └── ListingRefused         a subject policy forbids listing (127.0.0.1, too broad)
    ├── DataFileError              a malformed line of an input file (rbldnsd zone, evidence)
    ├── StoreError                 the database cannot be opened, migrated or written
    └── SnapshotError              a snapshot file is missing, truncated or of another version

Every re-raise chains with ``from``; only top-level supervisors catch ``Exception``.
"""


class ReputableError(Exception):
    """Base class of every error reputable reports to a user."""


class ConfigError(ReputableError):
    """The configuration file is missing or invalid."""


class InputError(ReputableError):
    """A value supplied by the user is invalid."""


class SubjectError(InputError):
    """Text that is neither an IP address, a CIDR network nor a domain name."""


class ListingRefused(InputError):
    """A subject that may not be listed (a never-listed test point, or broader than allowed)."""


class DataFileError(ReputableError):
    """A malformed line in a data file; the message names file and line."""

    def __init__(self, path: str, lineno: int, message: str) -> None:
        super().__init__(f"{path}:{lineno}: {message}")
        self.path = path
        self.lineno = lineno
        self.detail = message


class StoreError(ReputableError):
    """The database cannot be opened, migrated or written."""


class SnapshotError(ReputableError):
    """A snapshot file cannot be read."""


def exit_code_of(exc: ReputableError) -> int:
    """Return the exit code for *exc*: 2 for what the user gave, 3 for what failed at run time.

    The CLI's codes (docs/cli.md "Exit codes"), here so that serve's build child
    (reputable.builder) gives the same ones without importing the CLI.
    """
    if isinstance(exc, InputError | ConfigError | DataFileError):
        return 2
    return 3
