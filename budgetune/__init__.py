"""budgetune: search Transformer training schedules under a fixed FLOPs budget.

The parts, in the order data flows through them:

- ``budgetune.spaces``: what may be tried (``Schedule``, presets, space files);
- ``budgetune.trainables``: one trial in plain PyTorch (data, models, sharing, FLOPs, training);
- ``budgetune.search``: everything Ray (Tune, ASHA, Optuna, clusters);
- ``budgetune.analysis``: frontiers, fits and the best-schedule query, on the results table.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("budgetune")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
