"""API tokens in SQLite: name, digest of the secret, scopes; revocation keeps the row."""

from __future__ import annotations

from dataclasses import dataclass

from reputable.core.errors import InputError
from reputable.store.sqlite_tx import SQLiteTables, transaction


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """One stored token (never the secret, only its digest)."""

    name: str
    digest: str
    scopes: frozenset[str]
    created_at: float
    revoked_at: float | None


class TokenTables(SQLiteTables):
    """Mixin for SQLiteStore."""

    def add_token(self, name: str, digest: str, scopes: frozenset[str], *, now: float) -> None:
        """Store a new token; raise InputError when *name* is taken."""
        with transaction(self._db, f"cannot write token to {self.path}") as db:
            if db.execute("SELECT 1 FROM api_tokens WHERE name = ?", (name,)).fetchone():
                raise InputError(
                    f"token {name!r} exists; pick another name (revoked names stay taken)"
                )
            db.execute(
                "INSERT INTO api_tokens (name, digest, scopes, created_at) VALUES (?,?,?,?)",
                (name, digest, " ".join(sorted(scopes)), now),
            )
            self._audit(f"token:{name}", "token_add", name, None, " ".join(sorted(scopes)))

    def tokens(self) -> list[TokenRecord]:
        """Return every token, valid and revoked, by name."""
        rows = self._db.execute(
            "SELECT name, digest, scopes, created_at, revoked_at FROM api_tokens ORDER BY name"
        )
        return [
            TokenRecord(name, digest, frozenset(scopes.split()), created, revoked)
            for name, digest, scopes, created, revoked in rows
        ]

    def revoke_token(self, name: str, *, now: float) -> bool:
        """Revoke token *name*; return False when there is no valid token of that name."""
        with transaction(self._db, f"cannot revoke token in {self.path}") as db:
            changed = db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (now, name),
            ).rowcount
            if changed:
                self._audit(f"token:{name}", "token_revoke", name, None, "")
        return bool(changed)
