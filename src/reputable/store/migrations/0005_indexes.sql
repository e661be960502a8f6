-- Indexes for the policy engine at scale (bench/policy_scale.py, docs/benchmarks.md).
-- The targets with positive evidence: every evaluation that looks at a network reads them
-- to find clean members to carve out; without this index that read scans all evidence.
-- Partial, so bulk imports pay for it only on clean evidence.
CREATE INDEX evidence_clean ON evidence (target) WHERE cause = 'clean';
-- Listings by source: the policy engine replaces a network's escalation (source
-- 'policy:network:<cidr>') by deleting on the exact source, once per changed network.
CREATE INDEX listings_source ON listings (source);
