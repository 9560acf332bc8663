"""What may be tried: one ``Schedule``, spaces of them, presets and space files."""

from budgetune.spaces._presets import DEFAULT, PAPER, PRESETS, QUICK, load_space
from budgetune.spaces._schedule import (
    COOLDOWN_SHAPES,
    DEFAULT_LR,
    LR_SCHEDULES,
    MODEL_FAMILIES,
    QUANT_BITS,
    Schedule,
    schedule_fields,
    training_fields,
    validate_budget,
)
from budgetune.spaces._space import (
    Choice,
    Range,
    Space,
    config_to_schedule,
    corner_values,
    define_by_run,
    validate_space,
)

__all__ = [
    "COOLDOWN_SHAPES", "DEFAULT", "DEFAULT_LR", "LR_SCHEDULES", "MODEL_FAMILIES", "PAPER",
    "PRESETS", "QUANT_BITS", "QUICK",
    "Choice", "Range", "Schedule", "Space", "config_to_schedule", "corner_values",
    "define_by_run",
    "load_space", "schedule_fields", "training_fields", "validate_budget", "validate_space",
]
