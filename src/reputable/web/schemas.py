"""Request and response bodies (pydantic): the OpenAPI document is generated from these."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 1000
MAX_REASON = 1024  # bytes of a TXT reason, as at every other input


class Strict(BaseModel):
    """A request body: unknown fields are refused (400 naming them)."""

    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. bad_subject, rate_limited.")
    message: str = Field(description="What is wrong and how to fix it.")


class ErrorOut(BaseModel):
    error: ErrorBody


class ZoneAnswerOut(BaseModel):
    zone: str = Field(description="The DNS zone answering, e.g. bl.reputable.test.")
    cause: str
    code: str = Field(description="The A record the zone answers, e.g. 127.0.0.2.")
    since: str | None = Field(description="When the listing started (ISO 8601, UTC).")
    until: str | None = Field(description="When it ends by itself if nothing new is seen.")
    reason: str
    txt: str = Field(description="The TXT record exactly as DNS answers it.")
    listed_subject: str = Field(description="The listed IP, CIDR or domain this comes from.")


class LookupOut(BaseModel):
    subject: str
    listed: bool
    listings: list[ZoneAnswerOut]
    allowlisted: bool
    allowlist: list[ZoneAnswerOut]
    score: int = Field(description="Reputation 0-100 (100 best; 50 with no evidence).")
    bucket: Literal["unknown", "good", "neutral", "poor", "bad"]
    serial: int = Field(description="Serial of the snapshot DNS answers from.")
    truncated: bool = Field(description="A CIDR's listings were cut at 1,000.")


class BatchIn(Strict):
    subjects: list[str] = Field(min_length=1, max_length=MAX_BATCH)


class BatchOut(BaseModel):
    results: list[LookupOut]


class UrlsIn(Strict):
    urls: list[str] = Field(min_length=1, max_length=MAX_BATCH)


class UrlMatch(BaseModel):
    url: str = Field(description="The URL as given.")
    canonical: str = Field(description="The URL canonicalised as Safe Browsing does.")
    matched: str = Field(description="The listed host, registered domain or IP.")
    listings: list[ZoneAnswerOut]


class UrlsOut(BaseModel):
    matches: list[UrlMatch]


class EvidenceLineError(BaseModel):
    line: int
    message: str


class EvidenceOut(BaseModel):
    received: int
    stored: int
    duplicate: int
    rejected: int
    errors: list[EvidenceLineError] = Field(description="The first 100 rejected lines.")


class DelistIn(Strict):
    subject: str = Field(max_length=300)
    contact: str = Field(max_length=254, description="An e-mail address we can answer.")
    note: str = Field(default="", max_length=2000)


class DelistOut(BaseModel):
    id: int | None
    subject: str
    status: Literal["granted", "pending", "refused", "denied"]
    message: str
    created_at: str | None = None
    decided_at: str | None = None


class DecisionIn(Strict):
    reason: str = Field(min_length=1, max_length=MAX_REASON)


class ListingIn(Strict):
    subject: str = Field(max_length=300)
    cause: str
    reason: str = ""
    ttl: str | None = Field(default=None, description="Expire after e.g. 7d, 12h.")
    force: bool = Field(default=False, description="Allow ranges broader than the maximum.")


class ListingOut(BaseModel):
    subject: str
    cause: str
    code: str
    reason: str
    source: str
    listed_at: str | None
    expires_at: str | None


class ListingsOut(BaseModel):
    listings: list[ListingOut]
    offset: int
    limit: int
    more: bool


class AllowIn(Strict):
    subject: str = Field(max_length=300)
    note: str = Field(default="", max_length=MAX_REASON)
    ttl: str | None = None


class AllowOut(BaseModel):
    subject: str
    note: str
    source: str
    created_at: str | None
    expires_at: str | None


class AllowsOut(BaseModel):
    allowlist: list[AllowOut]


class RemovedOut(BaseModel):
    removed: int


class SimulateIn(Strict):
    policy: dict[str, Any] = Field(
        description="A candidate [policy] table, as in reputable.toml (durations as text)."
    )


class SimulateChange(BaseModel):
    subject: str
    cause: str


class SimulateOut(BaseModel):
    would_list: list[SimulateChange]
    would_delist: list[SimulateChange]
    unchanged: int


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    snapshot_serial: int | None
    snapshot_age_seconds: float | None
    store: bool
    store_serial: int | None
