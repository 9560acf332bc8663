"""budgetune.sizes (no torch) states the size that the trainer measures on real models."""

import pytest

from budgetune.sizes import schedule_bytes
from budgetune.spaces import Schedule
from budgetune.trainables import FAMILIES, final_bytes


@pytest.mark.parametrize("model", ["gpt2", "bert"])
@pytest.mark.parametrize("d_model, n_heads, d_ff, n_layers", [(48, 2, 100, 2), (64, 4, 256, 3),
                                                              (74, 2, 296, 1)])
def test_schedule_bytes_is_final_bytes_of_the_built_model(model, d_model, n_heads, d_ff,
                                                          n_layers):
    """Every cell of the compression grid, from the shape alone, equals what ``final_bytes``
    counts on the transformers model the trainer builds (widths whose int4 groups are 24,
    32 and the whole row of 74)."""
    s = Schedule(model=model, d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_ff=d_ff,
                 seq_len=64, vocab_size=300)
    family = FAMILIES[model]
    built = family.build(s, 0, "eager")
    for sparsity in (0.0, 0.5, 0.75, 0.9):
        for bits in (32, 8, 4):
            assert schedule_bytes(s, sparsity, bits) == final_bytes(
                built, family, sparsity, bits), (sparsity, bits)


def test_importing_sizes_and_analysis_imports_neither_torch_nor_ray():
    """analysis sizes untrained models with budgetune.sizes; neither may pull in torch."""
    import subprocess
    import sys

    code = ("import sys, budgetune.sizes, budgetune.analysis; "
            "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
