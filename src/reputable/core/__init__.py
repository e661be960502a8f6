"""Shared vocabulary: addresses, causes and return codes, clock, errors. Imports nothing else."""
