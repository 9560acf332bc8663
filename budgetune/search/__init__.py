"""Everything Ray: Tune trainable, ASHA on the FLOPs axis, Optuna, clusters (issue 4)."""

__all__: list[str] = []
