"""Spaces of schedules: what a search may try, as presets or from a user's YAML/TOML file.

A space maps Schedule fields to dimensions: a fixed value, a finite ``Choice``, or a ``Range``
(uniform or log-uniform, integer or real). ``share_unit`` is conditional: it is only sampled
when ``share_fraction > 0``. ``share_fraction = 0`` (never shared: the baseline) is reachable by
every searcher: presets list it as a choice, and a range that starts at 0 is sampled as
"shared or not" first, then the fraction.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from budgetune.spaces._schedule import Schedule, schedule_fields

_FIELDS = {f.name: f for f in schedule_fields()}


@dataclass(frozen=True)
class Choice:
    values: tuple


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    integer: bool = False


Dimension = Choice | Range | object  # anything else is a fixed value


@dataclass(frozen=True)
class Space:
    """Dimensions per Schedule field; fields left out keep Schedule's defaults."""

    name: str
    dims: dict[str, Dimension]

    def __post_init__(self) -> None:
        validate_space(self)

    @property
    def is_finite(self) -> bool:
        return not any(isinstance(d, Range) for d in self.dims.values())

    def grid(self) -> list[Schedule]:
        """Every schedule of a finite space (share_unit only varied when sharing)."""
        if not self.is_finite:
            ranged = [k for k, d in self.dims.items() if isinstance(d, Range)]
            raise ValueError(f"The grid searcher needs finite lists, but {ranged} are ranges; "
                             "give them as lists of values or use --searcher tpe|random.")
        fixed = {k: v for k, v in self.dims.items() if not isinstance(v, Choice)}
        choices = {k: v.values for k, v in self.dims.items() if isinstance(v, Choice)}
        seen, out = set(), []
        for combo in itertools.product(*choices.values()):
            values = {**fixed, **dict(zip(choices, combo))}
            if values.get("share_fraction", 0) == 0:
                values["share_unit"] = 1
            schedule = Schedule(**values)
            if schedule not in seen:
                seen.add(schedule)
                out.append(schedule)
        return out


def _suggest(trial, name: str, dim: Dimension):
    """One Optuna suggestion for one dimension (define-by-run)."""
    if isinstance(dim, Choice):
        return trial.suggest_categorical(name, list(dim.values))
    if isinstance(dim, Range):
        if name == "share_fraction" and dim.low == 0:
            if not trial.suggest_categorical("shared", [False, True]):
                return 0.0
            return trial.suggest_float(name, dim.high / 100, dim.high, log=dim.log)
        if dim.integer:
            return trial.suggest_int(name, int(dim.low), int(dim.high), log=dim.log)
        return trial.suggest_float(name, dim.low, dim.high, log=dim.log)
    return dim


class DefineByRun:
    """The function OptunaSearch calls: suggests every dimension, returns the fixed ones.

    A class rather than a closure: Tune pickles the searcher, this included, with its state."""

    def __init__(self, space: Space):
        self.space = space

    def __call__(self, trial) -> dict[str, object]:
        dims, fixed = self.space.dims, {}
        for name, dim in dims.items():
            if name == "share_unit":
                continue
            value = _suggest(trial, name, dim)
            if not isinstance(dim, Choice | Range):
                fixed[name] = value
        sharing = trial.params.get("share_fraction", fixed.get("share_fraction", 0))
        if "share_unit" in dims and sharing > 0:
            value = _suggest(trial, "share_unit", dims["share_unit"])
            if not isinstance(dims["share_unit"], Choice | Range):
                fixed["share_unit"] = value
        return fixed


def define_by_run(space: Space) -> Callable:
    return DefineByRun(space)


def config_to_schedule(config: dict[str, object]) -> Schedule:
    """A Tune config (sampled and fixed values) as a Schedule."""
    return Schedule.from_dict({k: v for k, v in config.items() if k in _FIELDS})


def corner_values(space: Space) -> dict[str, list]:
    """Each field's corners: every value of a choice, both ends of a range, a fixed value."""
    options = {}
    for name, dim in space.dims.items():
        if isinstance(dim, Choice):
            options[name] = list(dict.fromkeys(dim.values))
        elif isinstance(dim, Range):
            cast = int if dim.integer else float
            options[name] = list(dict.fromkeys([cast(dim.low), cast(dim.high)]))
        else:
            options[name] = [dim]
    return options


def _corners(space: Space) -> list[dict[str, object]]:
    """Values to validate a space on: every choice and both ends of every range, sampled
    down to 2000 combinations when the product is larger."""
    options = corner_values(space)
    combos = math.prod(len(v) for v in options.values())
    if combos <= 2000:
        return [dict(zip(options, c)) for c in itertools.product(*options.values())]
    rng = random.Random(0)
    return [{k: rng.choice(v) for k, v in options.items()} for _ in range(2000)]


def validate_space(space: Space) -> None:
    unknown = sorted(set(space.dims) - set(_FIELDS))
    if unknown:
        raise ValueError(f"The space {space.name!r} has unknown field(s) {unknown}; the fields "
                         f"are {sorted(_FIELDS)}.")
    for name, dim in space.dims.items():
        if isinstance(dim, Choice) and not dim.values:
            raise ValueError(f"The choice for `{name}` in space {space.name!r} is empty; list "
                             "at least one value.")
        if isinstance(dim, Range) and not (dim.low <= dim.high and (dim.low > 0 or not dim.log)):
            raise ValueError(f"The range of `{name}` in space {space.name!r} is "
                             f"[{dim.low}, {dim.high}], but must have low <= high (and low > 0 "
                             "when log).")
    for values in _corners(space):
        if values.get("share_fraction", 0) == 0:
            values["share_unit"] = 1
        try:
            Schedule(**values)
        except (ValueError, TypeError) as e:
            raise ValueError(f"The space {space.name!r} allows an invalid schedule: {e}") from None


def replace_dims(space: Space, **dims: Dimension) -> Space:
    return dataclasses.replace(space, dims={**space.dims, **dims})
