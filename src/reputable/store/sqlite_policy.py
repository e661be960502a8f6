"""SQLite reads of the event-time policy (issue 18): stops, probe closures, labels, senders."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from itertools import chain

from reputable.store.sqlite_tx import SQLiteTables

#: :meth:`PolicyReads.evidence_labels` reads the whole table once instead of IN lists when it
#: is asked for more targets than this, and for at least this share of the table's rows.
_SCAN_MIN_TARGETS = 5000
_SCAN_MIN_SHARE = 0.05
#: Sources of clean evidence that end a listing (probe_closures): a re-probe found it closed.
_CLOSING_PROBES = frozenset({"probe:relay", "probe:proxy"})


class PolicyReads(SQLiteTables):
    """Mixin for SQLiteStore: what the policy engine reads besides evidence rows and periods."""

    def _evidence_size(self) -> int:
        """Return the highest evidence id: the table's rows, or more (an index lookup)."""
        (top,) = self._db.execute("SELECT MAX(id) FROM evidence").fetchone()
        return int(top or 0)

    def removal_stops(self) -> dict[str, list[tuple[float, float]]]:
        """Return, per subject, (created_at, decided_at) of its granted removal requests."""
        out: dict[str, list[tuple[float, float]]] = {}
        for subject, created, decided in self._db.execute(
            "SELECT subject, created_at, decided_at FROM delist_requests"
            " WHERE status = 'granted' AND kind = 'removal' AND decided_at IS NOT NULL"
        ):
            out.setdefault(subject, []).append((float(created), float(decided)))
        return out

    def carve_out_grants(self) -> dict[str, float]:
        """Return, per address, when its latest carve-out from an escalated network was granted."""
        return {
            s: float(t)
            for s, t in self._db.execute(
                "SELECT subject, MAX(decided_at) FROM delist_requests WHERE status = 'granted'"
                " AND kind = 'carve_out' GROUP BY subject"
            )
        }

    def spam_senders(self, targets: Collection[str] | None = None) -> dict[str, set[str]]:
        """Return, per domain named in spam evidence, the targets (IPs, /64s) that sent it.

        With *targets*, only the domains named in those targets' spam, with all their senders.
        """
        domains: set[str] | None = None
        if targets is not None:
            domains = set()
            for chunk in self._chunks(sorted(targets)):
                marks = ",".join("?" * len(chunk))
                domains.update(
                    d
                    for (d,) in self._db.execute(
                        "SELECT DISTINCT domain FROM evidence WHERE cause = 'spam'"
                        f" AND domain IS NOT NULL AND target IN ({marks})",
                        chunk,
                    )
                )
        sql = "SELECT domain, target FROM evidence WHERE domain IS NOT NULL AND cause = 'spam'"
        out: dict[str, set[str]] = {}
        if domains is None:
            batches: Iterable[tuple[str, Sequence[str]]] = [(sql, ())]
        else:
            batches = (
                (f"{sql} AND domain IN ({','.join('?' * len(chunk))})", chunk)
                for chunk in self._chunks(sorted(domains))
            )
        for query, args in batches:
            for domain, target in self._each(query, args):
                if domain != target:
                    out.setdefault(domain, set()).add(target)
        return out

    def requests_decided_since(self, after: float) -> tuple[set[str], float]:
        """Return the subjects of requests decided after *after*, and the newest decision time."""
        rows = self._db.execute(
            "SELECT subject, decided_at FROM delist_requests WHERE decided_at > ?", (after,)
        ).fetchall()
        return {s for s, _ in rows}, max((float(t) for _, t in rows), default=after)

    def policy_targets_since(
        self, after_id: int, *, observed_by: float
    ) -> tuple[set[str], set[str], int]:
        """Return :meth:`evidence_targets_since` split: (decide, clean only, cursor).

        *clean only* are the targets whose new evidence is all positive (``clean``, not a
        relay/proxy re-probe): it changes no listing of their own, only the carve-outs of
        their networks, so an incremental evaluation re-decides those networks without
        reading the targets' evidence again. Every target is in exactly one of the two sets.
        """
        rows = self._db.execute(
            "SELECT id, target, observed_at, cause, source FROM evidence WHERE id > ?",
            (after_id,),
        ).fetchall()
        if not rows:
            return set(), set(), after_id
        ahead = [i for i, _, at, _, _ in rows if at > observed_by]
        cursor = min(ahead) - 1 if ahead else max(i for i, _, _, _, _ in rows)
        decide = {
            t for _, t, _, cause, source in rows if cause != "clean" or source in _CLOSING_PROBES
        }
        return decide, {t for _, t, _, _, _ in rows} - decide, cursor

    def probe_closures(
        self, targets: Collection[str] | None = None
    ) -> dict[str, list[tuple[float, str]]]:
        """Return, per target, (observed_at, probe kind) of probes that found a relay/proxy closed."""
        sql = (
            "SELECT target, observed_at, source FROM evidence WHERE cause = 'clean'"
            " AND source IN ('probe:relay', 'probe:proxy')"
        )
        out: dict[str, list[tuple[float, str]]] = {}
        if targets is None:
            batches: Iterable[tuple[str, Sequence[str]]] = [(sql, ())]
        else:
            batches = (
                (f"{sql} AND target IN ({','.join('?' * len(chunk))})", chunk)
                for chunk in self._chunks(sorted(targets))
            )
        for query, args in batches:
            for target, at, source in self._each(query, args):
                out.setdefault(target, []).append((float(at), source.split(":", 1)[1]))
        return out

    def evidence_labels(self, targets: Collection[str]) -> Iterator[tuple[str, str, float, str]]:
        """Yield (target, cause, observed_at, detector or source) of the evidence of *targets*.

        When *targets* are many (over 5,000) and a large share of the table's (a full run
        listing most of what it saw), one streamed pass over the table, filtered here, instead
        of IN lists: PostgreSQL planned each of the 200 lists of a 1M-listing run as a scan of
        the whole table (bench/store_backends.py --scale).
        """
        sql = (
            "SELECT target, cause, observed_at, COALESCE(json_extract(detail, '$.detector'),"
            " source) FROM evidence"
        )
        if len(targets) > _SCAN_MIN_TARGETS and len(targets) >= (
            _SCAN_MIN_SHARE * self._evidence_size()
        ):
            wanted = targets if isinstance(targets, (set, frozenset, dict)) else set(targets)
            return (row for row in self._each(sql) if row[0] in wanted)
        return chain.from_iterable(
            self._db.execute(f"{sql} WHERE target IN ({','.join('?' * len(chunk))})", chunk)
            for chunk in self._chunks(sorted(targets))
        )

    def own_rows(
        self, subjects: Collection[str] | None, *, source: str, active_at: float
    ) -> Iterator[tuple[str, str, str, float, float | None]]:
        """Yield (subject, cause, reason, listed_at, expires_at) of active listings of exactly *source*.

        *subjects* None: of every subject (a full evaluation; one pass, no parameter lists).
        The cursors are chained, not yielded from: no Python frame resumed per row.
        """
        sql = "SELECT subject, cause, reason, listed_at, expires_at FROM listings"
        if subjects is None:
            params = (source, active_at)
            where = f"{sql} WHERE source = ? AND (expires_at IS NULL OR expires_at > ?)"
            if getattr(self._db, "stream", None) is None:
                return iter(self._db.execute(where, params))  # SQLite's cursor steps as read
            return self._each(where, params)  # PostgreSQL: server-side batches
        return chain.from_iterable(
            self._db.execute(
                f"{sql} WHERE subject IN ({','.join('?' * len(chunk))}) AND source = ?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                [*chunk, source, active_at],
            )
            for chunk in self._chunks(sorted(subjects))
        )

    def listing_starts(
        self, causes: Collection[str], *, active_at: float
    ) -> Iterator[tuple[str, str, float]]:
        """Yield (subject, source, listed_at) of the active listings of *causes*."""
        marks = ",".join("?" * len(causes))
        yield from self._each(
            f"SELECT subject, source, listed_at FROM listings WHERE cause IN ({marks})"
            " AND (expires_at IS NULL OR expires_at > ?)",
            [*causes, active_at],
        )

    def active_rows_of(
        self, subjects: Collection[str], *, active_at: float
    ) -> Iterator[tuple[str, str, str, float, float | None]]:
        """Yield (subject, cause, source, listed_at, expires_at) of the active listings of *subjects*.

        ``listings_where(subjects=...)`` a chunk at a time, in its order, without a Listing
        (and a parsed subject) per row.
        """
        return chain.from_iterable(
            self._db.execute(
                "SELECT subject, cause, source, listed_at, expires_at FROM listings"
                f" WHERE subject IN ({','.join('?' * len(chunk))})"
                " AND (expires_at IS NULL OR expires_at > ?)",
                [*chunk, active_at],
            )
            for chunk in self._chunks(sorted(subjects))
        )

    def policy_source_rows(
        self, source_prefix: str, *, active_at: float
    ) -> list[tuple[str, str, str, float, float | None]]:
        """Return (subject, source, reason, listed_at, expires_at) of active listings by a policy source.

        ``source_rows`` for the policy's own lower-case sources (``policy:network`` and its
        ``policy:network:<cidr>``): an index range on the source, as ``listings_where`` reads
        them, instead of a LIKE that scans every listing on each incremental run.
        """
        return self._db.execute(
            "SELECT subject, source, reason, listed_at, expires_at FROM listings"
            " WHERE source >= ? AND source < ? AND (source = ? OR source LIKE ?)"
            " AND (expires_at IS NULL OR expires_at > ?)",
            (source_prefix, source_prefix + ";", source_prefix, source_prefix + ":%", active_at),
        ).fetchall()

    def escalation_members(
        self, causes: Collection[str], *, active_at: float
    ) -> list[tuple[str, int, str, float, float | None]]:
        """Return (subject, family, source, listed_at, expires_at) of the active listings of *causes*.

        One read for both things an escalation needs of its members: which are listed until
        when (:meth:`escalation_rows`) and since when (:meth:`listing_starts`).
        """
        marks = ",".join("?" * len(causes))
        return self._db.execute(
            f"SELECT subject, family, source, listed_at, expires_at FROM listings WHERE cause IN ({marks})"
            " AND (expires_at IS NULL OR expires_at > ?)",
            [*causes, active_at],
        ).fetchall()

    def expired_between(self, after: float, until: float) -> set[str]:
        """Return the subjects of listings that expired after *after* and by *until*."""
        return {
            subject
            for (subject,) in self._db.execute(
                "SELECT DISTINCT subject FROM listings WHERE expires_at > ? AND expires_at <= ?",
                (after, until),
            )
        }
