"""Active probes of one address: SMTP open relay, open proxy, reverse DNS (allow-listed only)."""
