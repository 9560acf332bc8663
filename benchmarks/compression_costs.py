"""Compression costs on trained small models: validation loss lost to int8 and int4 (group
size 32) weight quantization, and to one-shot against gradual pruning. Prints one JSON object.

    .venv/bin/python benchmarks/compression_costs.py
"""

from __future__ import annotations

import json

import torch

from budgetune.spaces import Schedule
from budgetune.trainables import Trial, TrialConfig

MODELS = {  # the models of tests/trainables/test_compress.py::well_trained
    "gpt2": (Schedule(d_model=64, n_layers=4, n_heads=2), 2e12),
    "bert": (Schedule(model="bert", d_model=128, n_layers=4), 6e12),
}


def main() -> None:
    torch.set_num_threads(2)
    config = TrialConfig(eval_tokens=4096, n_reports=1)
    out = {"benchmark": "compression_costs", "models": {}}
    for name, (schedule, budget) in MODELS.items():
        trial = Trial(schedule, budget, config)
        list(trial.run())
        base = trial.evaluate()
        row = {"val_loss": base, "unigram_loss": trial.unigram_loss}
        for sparsity, bits in ((0.0, 8), (0.0, 4), (0.5, 8), (0.75, 4), (0.9, 32)):
            loss, nbytes = trial.evaluate_compressed(sparsity, bits)
            row[f"s{sparsity}_b{bits}"] = {"cost_nats": round(loss - base, 4),
                                           "megabytes": nbytes / 1e6}
        out["models"][name] = row
    print(json.dumps(out))


if __name__ == "__main__":
    main()
