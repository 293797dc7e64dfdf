"""Helpers shared by the gear's modules (no third-party dependencies)."""
