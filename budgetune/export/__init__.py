"""Export a search's answer: the winner's model for Hugging Face, its tokenizer, the compressed
artifact, ``schedule.yaml`` and a model card (``budgetune export``)."""

from budgetune.export._export import (
    COMPRESSED_TOLERANCE,
    DENSE_TOLERANCE,
    Exported,
    check_out,
    export_best,
)
from budgetune.export._schedule_file import ScheduleFile, read_schedule_file, write_schedule_file

__all__ = ["COMPRESSED_TOLERANCE", "DENSE_TOLERANCE", "Exported", "ScheduleFile", "check_out",
           "export_best", "read_schedule_file", "write_schedule_file"]
