"""The spaces budgetune ships: its presets and the spaces its README shows (read from the
README itself, so the text users copy is what the tests run)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from budgetune.spaces import PRESETS, Choice, Range, Space, schedule_fields

README = Path(__file__).parents[2] / "README.md"


def readme_spaces() -> list[tuple[str, str]]:
    """(kind, text) of the README's ```yaml and ```toml blocks that are spaces: their keys are
    Schedule fields (the cluster-launcher YAML's are not)."""
    fields = {f.name for f in schedule_fields()}
    spaces = []
    for kind, text in re.findall(r"```(yaml|toml)\n(.*?)```", README.read_text(), re.S):
        raw = yaml.safe_load(text) if kind == "yaml" else tomllib.loads(text)
        if isinstance(raw, dict) and set(raw) <= fields:
            spaces.append((kind, text))
    return spaces


def as_map(space: Space) -> dict:
    """A preset as a space file would write it."""
    out = {}
    for name, dim in space.dims.items():
        if isinstance(dim, Choice):
            out[name] = list(dim.values)
        elif isinstance(dim, Range):
            out[name] = {"low": dim.low, "high": dim.high, "log": dim.log, "int": dim.integer}
        else:
            out[name] = dim
    return out


def shipped_maps() -> list[dict]:
    """Every shipped space as the mapping a space file holds."""
    readme = [yaml.safe_load(t) if k == "yaml" else tomllib.loads(t)
              for k, t in readme_spaces()]
    return [as_map(space) for space in PRESETS.values()] + readme
