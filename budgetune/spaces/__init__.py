"""What may be tried: one ``Schedule`` and, later, spaces of them."""

from budgetune.spaces._schedule import (
    MODEL_FAMILIES,
    QUANT_BITS,
    Schedule,
    schedule_fields,
    validate_budget,
)

__all__ = ["MODEL_FAMILIES", "QUANT_BITS", "Schedule", "schedule_fields", "validate_budget"]
