"""The checker: why an IP or domain is blocked (DNSBLs, rDNS, SPF/DKIM/DMARC, SMTP), and the fix."""
