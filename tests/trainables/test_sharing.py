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
@pytest.mark.parametrize("unit", [1, 2])
def test_unshare_gives_each_depth_its_share_of_the_summed_adamw_moments(model, unit, tiny,
                                                                          fast_config):
    s = tiny.replace(model=model, n_layers=4, share_fraction=0.5, share_unit=unit)
    b = 4 // unit  # depths that shared each block parameter, whose gradients were summed
    trial = Trial(s, 40 * 0.26e9, fast_config)
    for _ in range(3):
        trial._train_step()
    old_state = {name: {k: v.clone() for k, v in trial.optimizer.state[p].items()}
                 for name, p in trial.model.named_parameters()}  # each shared one once
    trial.unshare()
    blocks = trial.family.blocks(trial.model)
    names = {id(m): n for n, m in trial.model.named_modules()}
    for depth, block in enumerate(blocks):
        shared_name = names[id(blocks[depth % unit])]  # the shared block's name, e.g. "h.0"
        for name, p in block.named_parameters():
            old = old_state[f"{shared_name}.{name}"]
            state = trial.optimizer.state[p]
            assert torch.equal(state["exp_avg"], old["exp_avg"] / b)
            assert torch.equal(state["exp_avg_sq"], old["exp_avg_sq"] / b**2)
            assert float(state["step"]) == float(old["step"]) == 3.0
    block_ids = {id(p) for block in blocks for p in block.parameters()}
    for name, p in trial.model.named_parameters():  # outside the blocks: as they were
        if id(p) not in block_ids:
            assert torch.equal(trial.optimizer.state[p]["exp_avg"], old_state[name]["exp_avg"])
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


def test_a_depth_given_its_share_of_the_gradient_steps_as_the_shared_block_would(tiny,
                                                                               fast_config):
    """Each depth's gradient after the switch is about its share ḡ = G/B of the sum G the
    shared block got; given exactly that, each copy must take the step the shared block
    would have taken with G (AdamW's update is scale-free once its moments are on one scale).
    Copied as they are, the moments are B times one depth's scale and the step differs."""
    import copy

    s = tiny.replace(n_layers=4, share_fraction=0.5)
    trial = Trial(s, 40 * 0.26e9, fast_config)
    for _ in range(3):
        trial._train_step()
    trial.model.zero_grad()
    trial.family.loss(trial.model, trial.sampler.next()).backward()
    sums = {n: p.grad.clone() for n, p in trial.model.named_parameters()}
    shared = copy.deepcopy({"model": trial.model, "optimizer": trial.optimizer})
    for name, p in shared["model"].named_parameters():  # deepcopy leaves .grad behind
        p.grad = sums[name]
    shared["optimizer"].step()  # the shared reference: one step with the summed gradient G
    reference = {n: p.detach() for n, p in
                 shared["model"].named_parameters()}  # h.0 holds the shared block
    trial.unshare()
    for block in trial.blocks:
        for name, p in block.named_parameters():
            p.grad = sums[f"transformer.h.0.{name}"] / 4
    for new, old in zip(trial.optimizer.param_groups, shared["optimizer"].param_groups):
        new["lr"] = old["lr"]  # the trainer sets it before every step
    trial.optimizer.step()
    for block in trial.blocks:
        for name, p in block.named_parameters():
            # Up to AdamW's eps, which the m/B, v/B² moments meet at B× the scale: measured
            # 6e-5 apart here, against 1.6e-3 with the moments copied as they are (lr 3e-3).
            torch.testing.assert_close(p.detach(), reference[f"transformer.h.0.{name}"],
                                       rtol=0, atol=0.05 * s.lr)
