"""STAGE 4: publication — snapshot, DNS server, exports."""
