"""``schedule.yaml``: one budget point, written so that ``budgetune train --schedule FILE`` re-runs
it to the same final loss.

A budget point is a schedule trained for a budget, and, under WSD, the cooldown of a main line
planned for a larger budget (``main_line_flops``: it places the switch from shared blocks).
Its loss is evaluated on ``eval_tokens`` validation tokens of ``corpus``; ``threads`` is the
number of torch CPU threads the search's trial had (a CPU's float sums depend on it, so the
same count gives the same loss to the last digit).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from budgetune.spaces import Schedule, schedule_fields, validate_budget

FORMAT = "budgetune-schedule-1"


@dataclass(frozen=True)
class ScheduleFile:
    schedule: dict  # the fields of budgetune.spaces.Schedule
    budget_flops: float
    main_line_flops: float | None = None  # WSD: the budget the main line was planned for
    eval_tokens: int = 16384
    corpus: str = "builtin"
    corpus_id: str = ""  # the tokenized corpus the search used (provenance, checked by train)
    threads: int | None = None
    device: str = "cpu"  # where the search trained: "cuda" in bf16 autocast, else "cpu"
    val_loss: float | None = None  # what the search measured at this point (uncompressed)
    notes: dict = field(default_factory=dict)

    def to_schedule(self) -> Schedule:
        return Schedule(**self.schedule)


def write_schedule_file(path: Path, sf: ScheduleFile) -> None:
    import yaml

    body = {"format": FORMAT, **asdict(sf)}
    header = ("# A budgetune budget point. Re-run it with:\n"
              f"#   budgetune train --schedule {path.name}\n"
              "# (the same seed, budget, main line, evaluation tokens and threads give the same "
              "final loss)\n")
    path.write_text(header + yaml.safe_dump(body, sort_keys=False))


def read_schedule_file(path: str | Path) -> ScheduleFile:
    """Read and check a schedule file; every problem is one ``ValueError`` line. Numbers are
    converted as the fields' types say (YAML reads ``1e11`` as a string)."""
    import yaml

    path = Path(path)
    where = f"the schedule file {str(path)!r}"
    if not path.is_file():
        raise ValueError(f"The schedule file {str(path)!r} does not exist; give the "
                         "schedule.yaml of an export.")
    try:
        body = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"The schedule file {str(path)!r} is not valid YAML ("
                         f"{str(e).splitlines()[0]}); give the schedule.yaml of an export.")
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise ValueError(f"The schedule file {str(path)!r} is not a {FORMAT} file; give the "
                         "schedule.yaml of an export.")
    values = {k: v for k, v in body.items() if k != "format"}
    keys = set(ScheduleFile.__dataclass_fields__)
    if set(values) - keys:
        raise ValueError(f"In {where}, the keys {sorted(set(values) - keys)} are unknown; it "
                         f"may hold {sorted(keys)}.")
    for key in ("schedule", "budget_flops"):
        if key not in values:
            raise ValueError(f"In {where}, `{key}` is missing; give the schedule.yaml of an "
                             "export.")
    schedule = values["schedule"]
    fields = {f.name: f for f in schedule_fields()}
    if not isinstance(schedule, dict) or set(schedule) - set(fields):
        extra = sorted(set(schedule) - set(fields)) if isinstance(schedule, dict) else schedule
        raise ValueError(f"In {where}, `schedule` has unknown fields {extra}; it may hold "
                         f"{sorted(fields)}.")
    values["schedule"] = {k: _typed(f"schedule.{k}", v, str(fields[k].type), where)
                          for k, v in schedule.items()}
    for key, kind in _TYPES.items():
        if values.get(key) is not None:
            values[key] = _typed(key, values[key], kind, where)
    sf = ScheduleFile(**values)
    sf.to_schedule()  # a bad field fails here, in one line
    validate_budget(sf.budget_flops)
    if sf.main_line_flops is not None and not (
            math.isfinite(sf.main_line_flops) and sf.main_line_flops >= sf.budget_flops):
        raise ValueError(f"The value of `main_line_flops` is {sf.main_line_flops}, but must be "
                         f">= budget_flops ({sf.budget_flops:.4g}).")
    for key in ("eval_tokens", "threads"):
        value = getattr(sf, key)
        if value is not None and value < 1:
            raise ValueError(f"The value of `{key}` is {value}, but must be >= 1.")
    return sf


_TYPES = {"budget_flops": "float", "main_line_flops": "float", "eval_tokens": "int",
          "corpus": "str", "corpus_id": "str", "threads": "int", "val_loss": "float",
          "device": "str"}


def _typed(key: str, value: object, kind: str, where: str) -> object:
    """``value`` as a ``kind`` ("int", "float" or "str"), or one line saying what is wrong."""
    try:
        if kind == "str":
            if not isinstance(value, str):
                raise ValueError
            return value
        if isinstance(value, bool) or (kind == "int" and isinstance(value, float)):
            raise ValueError
        return int(value) if kind == "int" else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"In {where}, the value of `{key}` is {value!r}, but must be "
                         f"{'an' if kind == 'int' else 'a'} {kind}.") from None
