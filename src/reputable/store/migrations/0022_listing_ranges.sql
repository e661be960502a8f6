-- The range listings (CIDRs) of a family, read by explain and removal requests for every
-- lookup: a partial index so the read touches the ranges only, not every host listing.
CREATE INDEX IF NOT EXISTS listings_ranges ON listings (family) WHERE instr(subject, '/') > 0;
