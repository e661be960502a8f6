"""Exports of the published listings in other servers' formats (pure renderers + atomic writes)."""
