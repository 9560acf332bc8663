"""Named spaces, and loading a user's space file (YAML or TOML).

Per-trial costs are for 2 CPU cores on the built-in corpus (about 40 GFLOP/s per core).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from budgetune.spaces._schedule import MIN_VOCAB
from budgetune.spaces._space import Choice, Range, Space

# quick: tests and demos. d_model 32–64, depth 1–2, T = 64, B = 16: 1–2.3 GFLOPs a step,
# so a 5e11-FLOP trial takes 10–15 s on one core.
QUICK = Space("quick", {
    "model": "gpt2", "d_model": Choice((32, 64)), "n_layers": Choice((1, 2)), "n_heads": 2,
    "seq_len": 64, "batch_size": 16, "vocab_size": 4096,
    "share_fraction": Choice((0.0, 0.1, 0.3)), "share_unit": 1,
    "prune_sparsity": Choice((0.0, 0.5)), "quant_bits": Choice((32, 8)),
    "lr": Choice((1e-3, 3e-3)),
})

# default: the embedded demo, on the causal LM, made to bracket the compute-optimal size at its
# budgets (2e11, 6e11, 1.8e12 FLOPs). With a 4096-token vocabulary the LM head (6·d·V FLOPs a
# token) dominated, every extra parameter cost tokens, and the smallest model won at every
# budget. With 1024 tokens, benchmarks/default_bracket.py (a WSD grid of the widths at depth 2,
# dense, lr 3e-3) measured at 6e11: d16 4.254 / d32 4.165 / d64 4.720 nats, and at 1.8e12:
# 4.086 / 3.772 / 4.007: the IsoFLOP vertex lies inside these sizes at both (at 2e11 d16 wins,
# 4.540; adding d_model 8 brackets that one too, at the cost of slow, tiny trials).
# 16 sequences of 128 tokens: 3.8e8–4.0e9 FLOPs a step, so the smallest budget still gives the
# dearest schedule 49 steps. The embedded default's size limit is EMBEDDED_MAX_MB (0.4 MB):
# d_model 64 (0.70–1.1 MB in fp32) fits only compressed, so the search trades size against
# compression.
DEFAULT = Space("default", {
    "model": "gpt2", "d_model": Choice((16, 32, 64)), "n_layers": Choice((2, 4)),
    "n_heads": 2, "seq_len": 128, "batch_size": 16, "vocab_size": 1024,
    "share_fraction": Choice((0.0, 0.1, 0.25)), "share_unit": 1,
    "prune_sparsity": Choice((0.0, 0.5, 0.75)), "quant_bits": Choice((32, 8, 4)),
    "lr": Choice((1e-3, 3e-3)),
})

# paper: the seeds' setting. Masked LM (Yang et al. 2021 share-then-unshare BERT; Li et al.
# 2020 compress RoBERTa), sharing switch centred near 10%, A×B sharing units, heavy pruning.
# d_model 128–512, depth 6–12: 1.2M–38M non-embedding parameters; budgets of 1e15 and more.
PAPER = Space("paper", {
    "model": "bert", "d_model": Choice((128, 256, 512)), "n_layers": Choice((6, 12)),
    "n_heads": 4, "seq_len": 128, "batch_size": 64, "vocab_size": 8192,
    "share_fraction": Choice((0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)),
    "share_unit": Choice((1, 2, 3)), "prune_sparsity": Choice((0.0, 0.5, 0.75, 0.9)),
    "quant_bits": Choice((32, 8, 4)), "lr": Range(3e-4, 3e-3, log=True),
})

# tiny: for scale tests of the machinery (a thousand trials, many nodes), not for science.
# d_model 8–16, one layer, MIN_VOCAB (258) tokens, 8 sequences of 32 tokens: 5.1–12.6 MFLOPs
# a step, so its default budgets (2e8 6e8 1.8e9 FLOPs) are 15–350 steps and a trial costs
# about as much as its evaluation and its report: what is measured is the search, not training.
# A byte-level BPE always holds the 256 bytes and 2 special tokens (256 gave ids the model lacked).
TINY = Space("tiny", {
    "model": "gpt2", "d_model": Choice((8, 16)), "n_layers": 1, "n_heads": 1,
    "seq_len": 32, "batch_size": 8, "vocab_size": MIN_VOCAB,
    "share_fraction": 0.0, "share_unit": 1,
    "prune_sparsity": Choice((0.0, 0.5)), "quant_bits": Choice((32, 8)),
    "lr": Range(1e-3, 1e-2, log=True),
})

PRESETS = {space.name: space for space in (QUICK, DEFAULT, PAPER, TINY)}


def load_space(spec: str) -> Space:
    """A preset name, or a YAML (.yaml/.yml) or TOML (.toml) file mapping Schedule fields to a
    value (fixed), a list (choice) or {low, high, log?, int?} (range)."""
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if path.suffix not in (".yaml", ".yml", ".toml"):
        raise ValueError(f"The space {spec!r} is neither a preset {sorted(PRESETS)} nor a "
                         ".yaml/.yml/.toml file; give one of those.")
    if not path.is_file():
        raise ValueError(f"The space file {spec!r} does not exist; check the path.")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        raw = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        where = str(e).splitlines()[0]
        raise ValueError(f"The space file {spec!r} is not valid "
                         f"{'TOML' if path.suffix == '.toml' else 'YAML'} ({where}).") from None
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"The space file {spec!r} must map Schedule fields to values, lists "
                         "or {low, high} ranges, e.g. `d_model: [64, 128]`.")
    return Space(path.stem, {str(k): _dimension(str(k), v, spec) for k, v in raw.items()})


def _dimension(name: str, value: object, spec: str):
    if isinstance(value, list):
        return Choice(tuple(value))
    if isinstance(value, dict):
        extra = set(value) - {"low", "high", "log", "int"}
        if extra or not {"low", "high"} <= set(value):
            raise ValueError(f"The range for `{name}` in {spec!r} must have keys low and high "
                             f"(and optionally log, int), but has {sorted(value)}.")
        low, high = value["low"], value["high"]
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (low, high)):
            raise ValueError(f"The range for `{name}` in {spec!r} has low={low!r}, "
                             f"high={high!r}, but both must be numbers.")
        return Range(float(low), float(high), bool(value.get("log", False)),
                     bool(value.get("int", False)))
    return value
