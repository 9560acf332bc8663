"""The FLOPs count against torch's own counter, on an actual forward and backward pass."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from budgetune.flops import head_params
from budgetune.spaces import Schedule
from budgetune.trainables import (
    FAMILIES,
    Batch,
    flops_per_step,
    head_fraction,
    mask_tokens,
    n_params_nonemb_computed,
    plan_steps,
)


def _counted(schedule: Schedule) -> tuple[float, float, float]:
    """(total, block stack, head) FLOPs of one training step, as FlopCounterMode counts them."""
    family = FAMILIES[schedule.model]
    model = family.build(schedule, 0, "eager")  # torch 2.13 does not count CPU SDPA
    b, t, v = schedule.batch_size, schedule.seq_len, schedule.vocab_size
    x = torch.randint(2, v, (b, t + 1), generator=torch.Generator().manual_seed(0))
    if family.masked:
        batch = mask_tokens(x[:, :t], v, 1, torch.Generator().manual_seed(0))
    else:
        batch = Batch(x[:, :-1], x[:, 1:], None)
    with FlopCounterMode(display=False) as counter:
        family.loss(model, batch).backward()
    counts = counter.get_flop_counts()
    blocks = sum(sum(counts[k].values()) for k in counts
                 if k.rsplit(".", 1)[-1].isdigit())  # "...h.0", "...layer.1": one per block
    head = sum(sum(c.values()) for k, c in counts.items() if k.endswith("LMHead")
               or k == "Linear")  # GPT-2's lm_head is a bare top-level Linear
    return counter.get_total_flops(), blocks, head


@pytest.mark.parametrize("model", ["gpt2", "bert"])
@pytest.mark.parametrize("d_model, n_layers, seq_len", [(64, 2, 64), (96, 3, 32)])
def test_flops_match_torch_flop_counter_term_by_term(model, d_model, n_layers, seq_len):
    s = Schedule(model=model, d_model=d_model, n_layers=n_layers, n_heads=2, seq_len=seq_len,
                 batch_size=4, vocab_size=512)
    total, blocks, head = _counted(s)
    tokens = s.batch_size * s.seq_len
    ours_blocks = tokens * (6 * n_params_nonemb_computed(s) + 12 * n_layers * seq_len * d_model)
    ours_head = tokens * 6 * head_fraction(s) * head_params(s)
    assert blocks == pytest.approx(ours_blocks, rel=0.10)
    assert head == pytest.approx(ours_head, rel=0.10)
    assert total == pytest.approx(flops_per_step(s), rel=0.10)


def test_shared_blocks_cost_as_much_compute_as_unshared():
    shared = Schedule(d_model=64, n_heads=2, share_fraction=0.5)
    assert flops_per_step(shared) == flops_per_step(shared.replace(share_fraction=0.0))


@pytest.mark.parametrize("budget", [3.7e11, 1e12, 2e12 + 1, 9.99e12])
def test_planned_steps_fit_the_budget_and_end_less_than_one_step_short(budget):
    s = Schedule(d_model=64, n_heads=2)
    steps = plan_steps(s, budget)
    assert steps * flops_per_step(s) <= budget
    assert budget - steps * flops_per_step(s) < flops_per_step(s)


def test_a_budget_below_ten_steps_is_refused_with_the_minimum():
    with pytest.raises(ValueError, match="must be >= .* for this schedule"):
        plan_steps(Schedule(), 1e9)


def test_masked_lm_head_runs_on_exactly_the_masked_fraction():
    s = Schedule(model="bert", seq_len=128)
    assert head_fraction(s) == 19 / 128
