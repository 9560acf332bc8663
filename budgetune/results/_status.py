"""A search's saved settings (``search.json``), read by the store's users.

What ``budgetune status`` shows is computed in ``budgetune.analysis`` (it needs the one
definition of "best", and analysis imports results, never the other way round).
"""

from __future__ import annotations

import json
from pathlib import Path

SPEC_FILE = "search.json"  # the search's settings, written when it starts


def read_search_spec(folder: str | Path) -> dict | None:
    """The settings a search saved in its folder, or None when it saved none."""
    path = Path(folder) / SPEC_FILE
    return json.loads(path.read_text()) if path.is_file() else None
