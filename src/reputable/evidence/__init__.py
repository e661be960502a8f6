"""STAGE 1: evidence — one fact, one cause, one time, from logs, reports, feeds and probes."""
