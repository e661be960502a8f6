"""The DNSBL server: wire format, answers from the snapshot, UDP/TCP workers."""
