"""Shared fixtures: tiny schedules that train in seconds on the built-in corpus."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the CLI does: tiny fits, busy cores

import pytest  # noqa: E402
import torch  # noqa: E402

from budgetune.spaces import Schedule  # noqa: E402
from budgetune.trainables import TrialConfig  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture
def tiny() -> Schedule:
    """About 25k non-embedding parameters: 0.25 GFLOPs a step."""
    return Schedule(d_model=32, n_layers=2, n_heads=2, seq_len=32, batch_size=8,
                    vocab_size=4096, lr=3e-3)


@pytest.fixture
def fast_config() -> TrialConfig:
    return TrialConfig(eval_tokens=1024, n_reports=4)
