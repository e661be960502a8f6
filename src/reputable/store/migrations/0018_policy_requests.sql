-- Issue 18: a removal request is either a removal of the subject's own listings or a carve-out
-- of one address from an escalated network; sending behaviour is scored against the IP that
-- did it even when the evidence names a domain (IPv4 rows here; IPv6 rows keep their domain
-- target until re-imported).
ALTER TABLE delist_requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'removal';
UPDATE evidence SET target = subject
 WHERE domain IS NOT NULL AND target = domain AND subject NOT LIKE '%:%'
   AND cause IN ('spam', 'harvest', 'compromised', 'open_relay', 'open_proxy', 'rdns');
