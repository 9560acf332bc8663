"""The FLOPs count against torch's own counter, on an actual forward and backward pass."""

import math
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
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


def _counted(schedule: Schedule) -> dict[str, int]:
    """One training step's FLOPs as FlopCounterMode counts them, split into the formula's
    terms: block matrices (mm, addmm in the blocks), attention (bmm in the blocks), head."""
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
    blocks = [c for k, c in counts.items()
              if k.rsplit(".", 1)[-1].isdigit()]  # "...h.0", "...layer.1": one per block
    attention = sum(c.get(torch.ops.aten.bmm, 0) for c in blocks)  # QKᵀ and scores·V
    head = sum(sum(c.values()) for k, c in counts.items() if k.endswith("LMHead")
               or k == "Linear")  # GPT-2's lm_head is a bare top-level Linear
    return {"total": counter.get_total_flops(), "attention": attention, "head": head,
            "matrices": sum(sum(c.values()) for c in blocks) - attention}


@pytest.mark.parametrize("model", ["gpt2", "bert"])
@pytest.mark.parametrize("d_model, n_layers, seq_len", [(64, 2, 64), (96, 3, 32)])
def test_flops_match_torch_flop_counter_term_by_term(model, d_model, n_layers, seq_len):
    s = Schedule(model=model, d_model=d_model, n_layers=n_layers, n_heads=2, seq_len=seq_len,
                 batch_size=4, vocab_size=512)
    counted = _counted(s)
    tokens = s.batch_size * s.seq_len
    # Each term exactly: every FLOP the counter sees is one the formula names, and back.
    assert counted["matrices"] == tokens * 6 * n_params_nonemb_computed(s)
    assert counted["attention"] == tokens * 12 * n_layers * seq_len * d_model
    assert counted["head"] == tokens * 6 * head_fraction(s) * head_params(s)
    assert counted["total"] == counted["matrices"] + counted["attention"] + counted["head"]
    assert counted["total"] == flops_per_step(s)


def test_importing_the_flops_formula_does_not_import_torch():
    code = "import sys, budgetune.flops; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_shared_blocks_cost_as_much_compute_as_unshared():
    shared = Schedule(d_model=64, n_heads=2, share_fraction=0.5)
    assert flops_per_step(shared) == flops_per_step(shared.replace(share_fraction=0.0))


_schedules = st.builds(
    lambda model, heads, head_width, n_layers, seq_len, batch_size, vocab_size: Schedule(
        model=model, d_model=heads * head_width, n_heads=heads, n_layers=n_layers,
        seq_len=seq_len, batch_size=batch_size, vocab_size=vocab_size),
    st.sampled_from(["gpt2", "bert"]), st.integers(1, 8), st.integers(8, 64),
    st.integers(1, 24), st.integers(8, 2048), st.integers(1, 64), st.integers(258, 65536))


@st.composite
def _budgets(draw, s: Schedule) -> float:
    """Either any budget, or one within a few ulps of a whole number of steps: the quotient
    budget / flops_per_step rounds there, and floor() alone can land one step over."""
    fps = flops_per_step(s)
    if draw(st.booleans()):
        return draw(st.floats(10 * fps, min(1e26, 1e9 * fps)))
    budget = draw(st.integers(11, 10**9)) * fps  # over 2**53: rounded
    for _ in range(draw(st.integers(0, 3))):
        budget = math.nextafter(budget, draw(st.sampled_from([0.0, math.inf])))
    return budget


@settings(max_examples=2000, deadline=None)
@given(st.data())
def test_planned_steps_never_exceed_the_budget_and_end_less_than_one_step_short(data):
    s = data.draw(_schedules)
    budget = data.draw(_budgets(s))
    steps, fps = plan_steps(s, budget), flops_per_step(s)
    assert steps * fps <= budget  # the trainer's train_flops: step × flops_per_step, exactly
    assert (steps + 1) * fps > budget


def test_a_budget_one_ulp_below_a_whole_number_of_steps_plans_one_step_fewer():
    # An odd-sized schedule (found by the property test above): its FLOPs per step have many
    # significant bits, so budget / flops_per_step rounds up to the whole number.
    s = Schedule(model="bert", d_model=155, n_layers=19, n_heads=5, batch_size=6,
                 seq_len=1871, vocab_size=55723)
    budget = math.nextafter(785535 * flops_per_step(s), 0.0)
    assert math.floor(budget / flops_per_step(s)) == 785535  # floor() alone: one step over
    assert plan_steps(s, budget) == 785534


def test_a_budget_below_ten_steps_is_refused_with_the_minimum():
    with pytest.raises(ValueError, match="must be >= .* for this schedule"):
        plan_steps(Schedule(), 1e9)


def test_masked_lm_head_runs_on_exactly_the_masked_fraction():
    s = Schedule(model="bert", seq_len=128)
    assert head_fraction(s) == 19 / 128
