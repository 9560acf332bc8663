"""Share-then-unshare: parameter identity while shared, faithful copies and AdamW state after."""

import pytest
import torch

from budgetune.trainables import Trial, TrialConfig, count_params, is_shared


def _block_param_ids(trial: Trial) -> list[set[int]]:
    return [{id(p) for p in b.parameters()} for b in trial.family.blocks(trial.model)]


@pytest.mark.parametrize("model", ["gpt2", "bert"])
@pytest.mark.parametrize("unit", [1, 2])
def test_shared_stack_holds_one_unit_of_unique_parameters(model, unit, tiny, fast_config):
    s = tiny.replace(model=model, n_layers=4, share_fraction=0.5, share_unit=unit)
    trial = Trial(s, 40 * 0.26e9, fast_config)
    ids = _block_param_ids(trial)
    assert trial.shared
    assert len({frozenset(i) for i in ids}) == unit
    assert all(ids[i] == ids[i % unit] for i in range(4))
    unshared = Trial(s.replace(share_fraction=0.0), 40 * 0.26e9, fast_config)
    per_block = sum(p.numel() for p in unshared.family.blocks(unshared.model)[0].parameters())
    assert count_params(unshared.model, unshared.family)[1] - count_params(
        trial.model, trial.family)[1] == (4 - unit) * per_block


@pytest.mark.parametrize("model", ["gpt2", "bert"])
def test_unshare_gives_each_depth_an_equal_independent_copy(model, tiny, fast_config):
    s = tiny.replace(model=model, n_layers=3, share_fraction=0.5)
    trial = Trial(s, 40 * 0.26e9, fast_config)
    for _ in range(5):
        trial._train_step()
    before = {k: v.clone() for k, v in trial.family.blocks(trial.model)[0].state_dict().items()}
    trial.unshare()
    blocks = trial.family.blocks(trial.model)
    assert not is_shared(blocks)
    assert len(set().union(*_block_param_ids(trial))) == 3 * len(before)
    for block in blocks:
        for name, value in block.state_dict().items():
            assert torch.equal(value, before[name])
    with torch.no_grad():  # independent: changing one depth leaves the others alone
        next(blocks[0].parameters()).add_(1.0)
    assert not torch.equal(next(blocks[0].parameters()), next(blocks[1].parameters()))


@pytest.mark.parametrize("model", ["gpt2", "bert"])
def test_unshare_copies_optimizer_state_per_depth(model, tiny, fast_config):
    s = tiny.replace(model=model, n_layers=2, share_fraction=0.5)
    trial = Trial(s, 40 * 0.26e9, fast_config)
    for _ in range(3):
        trial._train_step()
    shared_block = trial.family.blocks(trial.model)[0]
    old_state = {name: {k: v.clone() for k, v in trial.optimizer.state[p].items()}
                 for name, p in shared_block.named_parameters()}
    trial.unshare()
    for block in trial.family.blocks(trial.model):
        for name, p in block.named_parameters():
            state = trial.optimizer.state[p]
            assert torch.equal(state["exp_avg"], old_state[name]["exp_avg"])
            assert torch.equal(state["exp_avg_sq"], old_state[name]["exp_avg_sq"])
            assert float(state["step"]) == float(old_state[name]["step"]) == 3.0
    n_opt = sum(len(g["params"]) for g in trial.optimizer.param_groups)
    assert n_opt == len({id(p) for p in trial.model.parameters()})


@pytest.mark.parametrize("model", ["gpt2", "bert"])
def test_loss_does_not_jump_at_the_switch(model, tiny, fast_config):
    s = tiny.replace(model=model, n_layers=4, share_fraction=0.5)
    trial = Trial(s, 40 * 0.26e9, fast_config)
    for _ in range(trial.switch_step):
        trial._train_step()
    before = trial.evaluate()
    trial.unshare()
    assert trial.evaluate() == pytest.approx(before, abs=1e-5)
    for _ in range(2):  # and training goes on from there, with the copied AdamW moments
        trial._train_step()
        assert trial.evaluate() < before + 0.05


def test_never_shared_is_the_baseline(tiny, fast_config):
    trial = Trial(tiny, 40 * 0.26e9, fast_config)
    assert trial.switch_step == 0 and not trial.shared
    assert all(not r.shared for r in trial.run())


def test_trial_unshares_at_the_planned_step(tiny):
    trial = Trial(tiny.replace(n_layers=2, share_fraction=0.3), 40 * 0.26e9,
                  TrialConfig(eval_tokens=512, n_reports=40))
    shared_at = {r.step: r.shared for r in trial.run()}
    assert trial.switch_step == round(0.3 * trial.total_steps)
    assert all(shared_at[k] == (k <= trial.switch_step) for k in shared_at)
