"""WSD trials: the learning rate's shape, budget points never over budget, and a branch that is
the standalone run of its budget loss for loss, restored or not."""

import math

import pytest

from budgetune.spaces import Schedule
from budgetune.trainables import Trial, TrialConfig, cooldown_start, lr_at

CONFIG = TrialConfig(eval_tokens=1024, n_reports=2)


@pytest.fixture
def wsd(tiny) -> Schedule:
    return tiny.replace(lr_schedule="wsd", warmup_steps=4)


def test_wsd_warms_up_holds_the_peak_and_cools_down_as_one_minus_sqrt(wsd):
    total = 50
    start = cooldown_start(total, wsd)
    assert start == 40  # the last 20% of the steps
    lrs = [lr_at(step, total, wsd) for step in range(total)]
    assert lrs[0] == pytest.approx(wsd.lr / 4) and lrs[3] == pytest.approx(wsd.lr)
    assert all(lr == wsd.lr for lr in lrs[3:start])  # the main line: the same for any budget
    assert lrs[start + 5] == pytest.approx(wsd.lr * (1 - math.sqrt(0.5)))
    assert all(b < a for a, b in zip(lrs[start:], lrs[start + 1:]))
    linear = wsd.replace(cooldown_shape="linear")
    assert lr_at(start + 5, total, linear) == pytest.approx(wsd.lr * 0.5)
    # the main line does not depend on the budget: a longer run has the same rates
    assert [lr_at(s, 500, wsd) for s in range(start)] == lrs[:start]


def test_every_budget_point_is_never_over_and_less_than_a_step_short(wsd):
    fps = Trial(wsd, 30 * 0.26e9, CONFIG).flops_per_step
    budgets = [12.5 * fps, 17.999 * fps, 25 * fps, 31.2 * fps]
    trial = Trial(wsd, budgets[-1], TrialConfig(eval_tokens=256, n_reports=0,
                                                points=tuple(budgets[:-1])))
    points = [r for r in trial.run() if r.point]
    assert [p.budget_flops for p in points] == budgets
    for p in points:
        assert p.budget_flops - fps < p.train_flops <= p.budget_flops
    # the trial paid for its main line and every cooldown branch
    assert points[-1].trial_flops == pytest.approx(
        points[-1].train_flops + sum(p.step - cooldown_start(p.step, wsd) for p in points[:-1])
        * fps)


def _points(reports):
    return {r.budget_flops: r for r in reports if r.point}


@pytest.mark.parametrize("changes", [
    {},
    {"model": "bert", "prune_sparsity": 0.5, "quant_bits": 4},  # the ramp inside the cooldown
])
def test_a_branch_is_the_standalone_run_of_its_budget_loss_for_loss(wsd, changes):
    s = wsd.replace(**changes)
    fps = Trial(s, 30 * 0.26e9, CONFIG).flops_per_step
    budgets = (20 * fps, 40 * fps, 80 * fps)
    points = _points(Trial(s, budgets[-1], TrialConfig(
        eval_tokens=1024, n_reports=2, points=budgets[:2])).run())
    assert len(points) == 3
    for budget in budgets:
        alone = list(Trial(s, budget, CONFIG).run())[-1]
        branch = points[budget]
        assert alone.point and alone.step == branch.step
        assert branch.val_loss == alone.val_loss  # exactly: same data, generators, steps
        assert branch.val_loss_compressed == alone.val_loss_compressed
        assert branch.sparsity == alone.sparsity == pytest.approx(s.prune_sparsity, abs=0.01)
        assert branch.current_lr == alone.current_lr
    # each branch's grid came with it; the last point's comes from grid() after the run
    assert points[budgets[0]].grid and not points[budgets[-1]].grid


def test_a_branch_after_a_restore_gives_the_numbers_of_an_unbroken_run(wsd):
    fps = Trial(wsd, 30 * 0.26e9, CONFIG).flops_per_step
    budgets = (16 * fps, 30 * fps, 48 * fps)
    config = TrialConfig(eval_tokens=512, n_reports=0, points=budgets[:2])
    unbroken = _points(Trial(wsd, budgets[-1], config).run())
    first = Trial(wsd, budgets[-1], config)
    run = first.run()
    next(run)  # the first point: its branch is over, the main line as it was
    state = first.state_dict()
    restored = Trial(wsd, budgets[-1], config)
    restored.load_state_dict(state)
    rest = _points(restored.run())
    assert sorted(rest) == list(budgets[1:])  # the first point is not run again
    for budget in budgets[1:]:
        assert rest[budget].val_loss == unbroken[budget].val_loss
        assert rest[budget].trial_flops == unbroken[budget].trial_flops  # branches counted


def test_sharing_is_placed_on_the_main_line_and_never_trained_in_a_cooldown(wsd):
    s = wsd.replace(share_fraction=0.5, n_layers=2, share_unit=1)
    fps = Trial(s, 30 * 0.26e9, CONFIG).flops_per_step
    budgets = (20 * fps, 80 * fps)
    points = _points(Trial(s, budgets[-1], TrialConfig(
        eval_tokens=512, n_reports=0, points=budgets[:1])).run())
    small, large = points[budgets[0]], points[budgets[1]]
    # the switch is at step 40 of the main line; the 20-step point's cooldown starts at 16
    # and trains unshared: 16 of its 20 steps were shared
    assert small.share_fraction_effective == pytest.approx(16 / 20)
    assert large.share_fraction_effective == pytest.approx(40 / 80)
    assert not small.shared and not large.shared
    # a standalone run given the main line's budget is the branch, loss for loss
    alone = list(Trial(s, budgets[0], TrialConfig(
        eval_tokens=512, n_reports=0, main_line_flops=budgets[1])).run())[-1]
    assert alone.val_loss == small.val_loss


def test_a_point_planned_as_many_steps_as_the_trial_is_still_its_own_point(wsd):
    fps = Trial(wsd, 30 * 0.26e9, CONFIG).flops_per_step
    trial = Trial(wsd, 20.9 * fps, TrialConfig(eval_tokens=256, n_reports=0,
                                               points=(20.2 * fps,)))  # both plan 20 steps
    first, last = [r for r in trial.run() if r.point]
    assert first.budget_flops == 20.2 * fps and first.grid and not first.completed
    assert last.completed and last.budget_flops == 20.9 * fps


def test_points_need_wsd_and_may_not_exceed_the_budget(tiny, wsd):
    with pytest.raises(ValueError, match="need `lr_schedule = wsd`"):
        Trial(tiny, 30 * 0.26e9, TrialConfig(points=(20 * 0.26e9,)))
    with pytest.raises(ValueError, match="The value of `point` is"):
        Trial(wsd, 30 * 0.26e9, TrialConfig(points=(40 * 0.26e9,)))
    with pytest.raises(ValueError, match="A main line needs `lr_schedule = wsd`"):
        Trial(tiny, 30 * 0.26e9, TrialConfig(main_line_flops=60 * 0.26e9))
