"""Frontiers, fits and the best-schedule query, on the results table alone (no ray, no torch)."""

__all__: list[str] = []
