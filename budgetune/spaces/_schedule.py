"""One point of the search space: a training schedule.

A trial is a (schedule, budget) pair: the budget is deliberately not a field, so one schedule
can be trained at several budgets and compared along the compute axis.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

MODEL_FAMILIES = ("gpt2", "bert")
QUANT_BITS = (32, 8, 4)
LR_SCHEDULES = ("cosine", "wsd")
COOLDOWN_SHAPES = ("1-sqrt", "linear")
# Peak learning rates measured on the built-in corpus at d_model 128, depth 4, 1e13 FLOPs: the
# pre-LN masked LM left the unigram plateau sooner at 1e-3 than at 3e-3 (6.21 vs 6.37 nats at
# 6e12 FLOPs); the causal LM trains well at 3e-3.
DEFAULT_LR = {"gpt2": 3e-3, "bert": 1e-3}
MAX_BUDGET_FLOPS = 1e26  # beyond every training run ever reported; a typo guard, not a science


MIN_VOCAB = 258  # 256 bytes + EOT + MASK (budgetune.trainables._tokenizer.SPECIAL_TOKENS)


@dataclass(frozen=True)
class Schedule:
    """Everything that decides how one model is trained and compressed.

    Defaults are the embedded demo's: a small causal LM that leaves the unigram plateau within
    a few 1e12 FLOPs on the built-in corpus (about 0.8M non-embedding parameters).
    """

    model: str = "gpt2"  # "gpt2" (causal LM) or "bert" (masked LM, the seeds' setting)
    d_model: int = 128  # width d
    n_layers: int = 4  # depth L
    n_heads: int = 4  # d_model / n_heads = 32, the head width of small GPT-2s
    d_ff: int = 0  # 0 means 4·d_model, as in GPT-2 and BERT
    share_fraction: float = 0.0  # fraction of steps trained with shared blocks; 0 = never shared
    share_unit: int = 1  # A: consecutive blocks in one sharing unit, repeated n_layers/A times
    prune_sparsity: float = 0.0  # target fraction of zero weights in the block stack
    prune_fraction: float = 0.3  # gradual pruning runs over this last fraction of the steps
    quant_bits: int = 32  # post-training weight quantization: 32 (none), 8 or 4
    lr: float = 0.0  # peak AdamW learning rate; 0 takes the family's tuned default (DEFAULT_LR)
    # "cosine": warmup, then cosine decay over the budget. "wsd" (warmup-stable-decay, Hägele
    # et al. 2024): warmup over `warmup_steps`, the peak rate held, then a cooldown over the
    # last `cooldown_fraction` of the steps shaped `cooldown_shape`; its main line does not
    # depend on the budget, so one run branches a cooldown at every budget point.
    lr_schedule: str = "cosine"
    warmup_fraction: float = 0.05  # cosine: linear warmup over this fraction of the steps
    warmup_steps: int = 10  # wsd: linear warmup over this many steps, whatever the budget
    cooldown_fraction: float = 0.2  # wsd: the cooldown's share of the budget's steps
    cooldown_shape: str = "1-sqrt"  # wsd: lr × (1 − √t) over the cooldown (t: 0 → 1), or linear
    weight_decay: float = 0.1  # AdamW decoupled weight decay on matrices only
    batch_size: int = 32  # sequences per step
    seq_len: int = 128  # tokens per sequence, T
    vocab_size: int = 4096  # BPE vocabulary V, trained locally on the corpus
    seed: int = 0  # model init, data order and masking

    def __post_init__(self) -> None:
        if self.d_ff == 0:
            object.__setattr__(self, "d_ff", 4 * self.d_model)
        if self.lr == 0 and self.model in DEFAULT_LR:
            object.__setattr__(self, "lr", DEFAULT_LR[self.model])
        _validate(self)

    @property
    def shared_blocks_at_start(self) -> bool:
        return self.share_fraction > 0

    def replace(self, **changes: object) -> Schedule:
        """A copy with some fields changed, validated like any other."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> Schedule:
        """Build from a mapping, refusing unknown keys with a message that lists the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"Unknown schedule field(s) {unknown}; the fields are {sorted(known)}."
            )
        return cls(**values)


def schedule_fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(Schedule))


def training_fields() -> list[str]:
    """The fields that decide what is trained, the recipe's training part: all but the seed
    and ``quant_bits`` (quantization is applied after training; a recipe's cells vary it)."""
    return [f.name for f in schedule_fields() if f.name not in ("seed", "quant_bits")]


def _check(name: str, value: object, ok: bool, must: str) -> None:
    if not ok:
        raise ValueError(f"The value of `{name}` is {value!r}, but must be {must}.")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _validate(s: Schedule) -> None:
    _check("model", s.model, s.model in MODEL_FAMILIES, f"one of {list(MODEL_FAMILIES)}")
    _check("lr_schedule", s.lr_schedule, s.lr_schedule in LR_SCHEDULES,
           f"one of {list(LR_SCHEDULES)}")
    _check("cooldown_shape", s.cooldown_shape, s.cooldown_shape in COOLDOWN_SHAPES,
           f"one of {list(COOLDOWN_SHAPES)}")
    for name in ("d_model", "n_layers", "n_heads", "d_ff", "share_unit", "batch_size",
                 "seq_len", "vocab_size", "quant_bits", "seed", "warmup_steps"):
        value = getattr(s, name)
        _check(name, value, _is_int(value), "an integer")
    for name in ("share_fraction", "prune_sparsity", "prune_fraction", "lr",
                 "warmup_fraction", "weight_decay", "cooldown_fraction"):
        value = getattr(s, name)
        _check(name, value, _is_real(value), "a finite number")
    _check("d_model", s.d_model, s.d_model >= 8, ">= 8")
    _check("n_heads", s.n_heads, s.n_heads >= 1, ">= 1")
    _check("d_model", s.d_model, s.d_model % s.n_heads == 0,
           f"divisible by `n_heads` ({s.n_heads})")
    _check("n_layers", s.n_layers, s.n_layers >= 1, ">= 1")
    _check("d_ff", s.d_ff, s.d_ff >= 1, ">= 1")
    _check("share_fraction", s.share_fraction, 0 <= s.share_fraction < 1, "in [0, 1)")
    _check("share_unit", s.share_unit, 1 <= s.share_unit <= s.n_layers,
           f"in [1, n_layers={s.n_layers}]")
    _check("share_unit", s.share_unit, s.n_layers % s.share_unit == 0,
           f"a divisor of `n_layers` ({s.n_layers})")
    _check("prune_sparsity", s.prune_sparsity, 0 <= s.prune_sparsity <= 0.95, "in [0, 0.95]")
    _check("prune_fraction", s.prune_fraction, 0 < s.prune_fraction <= 1, "in (0, 1]")
    _check("quant_bits", s.quant_bits, s.quant_bits in QUANT_BITS, f"one of {list(QUANT_BITS)}")
    _check("lr", s.lr, 0 < s.lr <= 1, "in (0, 1]")
    _check("warmup_fraction", s.warmup_fraction, 0 <= s.warmup_fraction < 1, "in [0, 1)")
    _check("warmup_steps", s.warmup_steps, s.warmup_steps >= 0, ">= 0")
    _check("cooldown_fraction", s.cooldown_fraction, 0 < s.cooldown_fraction < 1, "in (0, 1)")
    _check("weight_decay", s.weight_decay, 0 <= s.weight_decay < 1, "in [0, 1)")
    _check("batch_size", s.batch_size, s.batch_size >= 1, ">= 1")
    _check("seq_len", s.seq_len, 8 <= s.seq_len <= 8192, "in [8, 8192]")
    # a byte-level BPE holds the 256 bytes and 2 special tokens (EOT, MASK): fewer would give
    # the corpus token ids the model has no row for
    _check("vocab_size", s.vocab_size, MIN_VOCAB <= s.vocab_size <= 65536,
           f"in [{MIN_VOCAB}, 65536] (the 256 bytes and 2 special tokens at least)")
    _check("seed", s.seed, s.seed >= 0, ">= 0")


def validate_budget(budget_flops: object, name: str = "budget") -> float:
    """Check a training budget in FLOPs where it is given; return it as a float."""
    _check(name, budget_flops, _is_real(budget_flops), "a finite number of FLOPs")
    _check(name, budget_flops, budget_flops > 0, "> 0 FLOPs")
    _check(name, budget_flops, budget_flops <= MAX_BUDGET_FLOPS,
           f"<= {MAX_BUDGET_FLOPS:.0e} FLOPs (is it a typo?)")
    return float(budget_flops)
