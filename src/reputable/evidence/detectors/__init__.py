"""Detectors: stateful, pure consumers of parsed events that emit evidence over sliding windows."""
