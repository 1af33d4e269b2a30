"""Strict semantic filters: columnar (polars) verdicts that count what they drop, per reason."""
