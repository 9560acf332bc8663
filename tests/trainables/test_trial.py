"""The training loop: budget accounting, reproducibility, checkpoint and restore, learning."""

import dataclasses
import io

import pytest
import torch

from budgetune.spaces import Schedule
from budgetune.trainables import Trial, TrialConfig, lr_at, report_steps

WALL_CLOCK = {"wall_s", "train_s"}


def _without_wall_clock(report) -> dict:
    return {k: v for k, v in report.to_dict().items() if k not in WALL_CLOCK}


def test_train_flops_never_decrease_never_exceed_and_end_within_a_step(tiny, fast_config):
    budget = 57.3 * 0.26e9
    trial = Trial(tiny, budget, fast_config)
    reports = list(trial.run())
    flops = [r.train_flops for r in reports]
    assert flops == sorted(flops)
    assert all(f <= budget for f in flops)
    assert budget - flops[-1] < trial.flops_per_step
    assert all(r.train_flops == r.step * trial.flops_per_step for r in reports)
    assert reports[-1].completed and not any(r.completed for r in reports[:-1])


def test_reports_land_exactly_on_requested_budget_fractions(tiny):
    budget = 90 * 0.26e9
    trial = Trial(tiny, budget, TrialConfig(eval_tokens=512, n_reports=0,
                                            report_fractions=(1 / 9, 1 / 3)))
    reports = list(trial.run())
    assert len(reports) == 3
    for frac, r in zip((1 / 9, 1 / 3), reports):
        assert r.train_flops >= frac * budget > r.train_flops - trial.flops_per_step


def test_report_steps_are_unique_sorted_and_end_at_the_last_step():
    steps = report_steps(100, 1.0, 100.0, (1 / 9, 1 / 3), 10)
    assert steps == sorted(set(steps)) and steps[-1] == 100 and 12 in steps and 34 in steps


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    s = Schedule(lr=1e-3, warmup_fraction=0.1)
    lrs = [lr_at(k, 100, s) for k in range(100)]
    assert lrs[9] == pytest.approx(1e-3) and lrs[0] == pytest.approx(1e-4)
    assert lrs[-1] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))


@pytest.mark.parametrize("model", ["gpt2", "bert"])
def test_two_runs_with_one_seed_give_identical_reports(model, tiny, fast_config):
    s = tiny.replace(model=model, share_fraction=0.3)
    runs = [[_without_wall_clock(r) for r in Trial(s, 30 * 0.26e9, fast_config).run()]
            for _ in range(2)]
    assert runs[0] == runs[1]
    other = [_without_wall_clock(r) for r in
             Trial(s.replace(seed=1), 30 * 0.26e9, fast_config).run()]
    assert other != runs[0]


@pytest.mark.parametrize("model", ["gpt2", "bert"])
@pytest.mark.parametrize("stop_after", [1, 3])  # before and after the unsharing switch
def test_a_run_saved_and_restored_midway_gives_the_same_reports(model, stop_after, tiny):
    s = tiny.replace(model=model, share_fraction=0.4)
    config = TrialConfig(eval_tokens=1024, n_reports=5)
    budget = 30 * 0.26e9
    straight = [_without_wall_clock(r) for r in Trial(s, budget, config).run()]

    first = Trial(s, budget, config)
    head = []
    for r in first.run():
        head.append(_without_wall_clock(r))
        if len(head) == stop_after:
            break
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(12345)  # the restored trial must not depend on the process's RNG
    second = Trial(s, budget, config)
    second.load_state_dict(torch.load(buffer, weights_only=True))
    tail = [_without_wall_clock(r) for r in second.run()]
    assert head + tail == straight


def test_a_checkpoint_is_refused_by_another_schedule(tiny, fast_config):
    state = Trial(tiny, 30 * 0.26e9, fast_config).state_dict()
    with pytest.raises(ValueError, match="another schedule or budget"):
        Trial(tiny.replace(seed=3), 30 * 0.26e9, fast_config).load_state_dict(state)


def test_report_columns_cover_the_design_contract(tiny, fast_config):
    names = {f.name for f in dataclasses.fields(next(Trial(tiny, 30 * 0.26e9,
                                                           fast_config).run()))}
    assert {"step", "tokens", "epochs", "train_flops", "eval_flops", "wall_s", "train_s",
            "n_params", "n_params_nonemb", "shared", "val_loss", "unigram_loss",
            "val_loss_se", "eval_tokens", "val_loss_compressed", "compressed_bytes",
            "sparsity"} <= names


def test_evaluation_is_charged_to_eval_flops_not_the_budget(tiny, fast_config):
    reports = list(Trial(tiny, 30 * 0.26e9, fast_config).run())
    evals = [r.eval_flops for r in reports]
    assert evals[0] > 0 and all(b > a for a, b in zip(evals, evals[1:]))


def test_the_issue_command_learns_half_a_nat_below_unigram():
    """`budgetune train --d-model 64 --n-layers 4 --n-heads 2 --share-fraction 0.5
    --budget 2e12 --seed 0`: about a minute on 2 cores."""
    s = Schedule(d_model=64, n_layers=4, n_heads=2, share_fraction=0.5, seed=0)
    reports = list(Trial(s, 2e12, TrialConfig(n_reports=2)).run())
    last = reports[-1]
    assert last.val_loss < last.unigram_loss - 0.5
    assert last.train_flops <= 2e12 and not last.shared


@pytest.mark.parametrize("model", ["gpt2", "bert"])
def test_reports_carry_the_standard_error_of_val_loss_over_the_evaluated_tokens(model, tiny):
    import torch.nn.functional as F

    trial = Trial(tiny.replace(model=model), 30 * 0.26e9, TrialConfig(eval_tokens=1024,
                                                                       n_reports=1))
    last = list(trial.run())[-1]
    losses = []  # the reference: whole-batch logits, one unreduced cross-entropy per batch
    with torch.no_grad():
        for batch in trial.valid:
            if trial.family.masked:
                positions = torch.arange(batch.inputs.shape[1]).expand(batch.inputs.shape)
                hidden = trial.model.roberta_prelayernorm(
                    input_ids=batch.inputs, position_ids=positions).last_hidden_state
                logits = trial.model.lm_head(hidden[batch.positions])
            else:
                hidden = trial.model.transformer(input_ids=batch.inputs).last_hidden_state
                logits = trial.model.lm_head(hidden).flatten(0, 1)
            losses.append(F.cross_entropy(logits, batch.targets.reshape(-1), reduction="none"))
    losses = torch.cat(losses).double()
    assert last.eval_tokens == losses.numel() == sum(b.targets.numel() for b in trial.valid)
    assert last.val_loss == pytest.approx(float(losses.mean()), rel=1e-5)
    assert last.val_loss_se == pytest.approx(float(losses.std()) / losses.numel() ** 0.5,
                                             rel=1e-4)
    assert 0 < last.val_loss_se < 0.2  # 1024 tokens (bert: the 15% masked of them)
