-- Leaner evidence indexes for bulk import (bench/policy_scale.py): most evidence is scored
-- against its own subject (subject = target) and names no domain, so the subject and domain
-- indexes only need the rows where they add something; every query on them states that.
DROP INDEX evidence_subject;
CREATE INDEX evidence_subject ON evidence (subject) WHERE subject != target;
DROP INDEX evidence_domain;
CREATE INDEX evidence_domain ON evidence (domain) WHERE domain IS NOT NULL;
