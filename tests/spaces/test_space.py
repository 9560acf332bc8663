"""Spaces: presets, define-by-run with a conditional parameter, grids, space files."""

import optuna
import pytest

from budgetune.spaces import (
    PRESETS,
    Choice,
    Range,
    Space,
    config_to_schedule,
    define_by_run,
    load_space,
)


def _sample(space: Space, n: int, sampler=None) -> list[dict]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler or optuna.samplers.RandomSampler(seed=0))
    sample = define_by_run(space)
    configs = []
    for _ in range(n):
        trial = study.ask()
        fixed = sample(trial)
        configs.append({**trial.params, **fixed})
        study.tell(trial, 1.0)
    return configs


@pytest.mark.parametrize("name", ["quick", "default", "paper"])
def test_presets_sample_valid_schedules_and_reach_the_never_shared_baseline(name):
    configs = _sample(PRESETS[name], 60)
    schedules = [config_to_schedule(c) for c in configs]
    assert any(s.share_fraction == 0 for s in schedules)
    assert any(s.share_fraction > 0 for s in schedules)


def test_share_unit_is_only_sampled_when_sharing():
    space = Space("t", {"n_layers": 6, "share_fraction": Choice((0.0, 0.2)),
                        "share_unit": Choice((1, 2, 3))})
    for config in _sample(space, 40):
        assert ("share_unit" in config) == (config["share_fraction"] > 0)


def test_a_share_fraction_range_from_zero_still_reaches_zero_with_tpe():
    space = Space("t", {"share_fraction": Range(0.0, 0.5)})
    tpe = optuna.samplers.TPESampler(seed=0, n_startup_trials=5)
    fractions = [c.get("share_fraction", 0.0) for c in _sample(space, 30, tpe)]
    assert 0.0 in fractions and any(0 < f <= 0.5 for f in fractions)


def test_grid_of_a_finite_space_does_not_vary_share_unit_without_sharing():
    space = Space("t", {"n_layers": 4, "share_fraction": Choice((0.0, 0.1)),
                        "share_unit": Choice((1, 2))})
    grid = space.grid()
    assert len(grid) == 3  # (0, 1), (0.1, 1), (0.1, 2)
    assert PRESETS["quick"].is_finite and len(PRESETS["quick"].grid()) == 96


def test_grid_refuses_ranges_with_the_fix():
    with pytest.raises(ValueError, match="needs finite lists.*--searcher tpe"):
        PRESETS["paper"].grid()


@pytest.mark.parametrize("suffix, text", [
    (".yaml", "model: gpt2\nd_model: [32, 64]\nn_heads: 2\nlr: {low: 1.0e-4, high: 1.0e-2, "
              "log: true}\nshare_fraction: [0.0, 0.1]\n"),
    (".toml", 'model = "gpt2"\nd_model = [32, 64]\nn_heads = 2\nshare_fraction = [0.0, 0.1]\n'
              "[lr]\nlow = 1e-4\nhigh = 1e-2\nlog = true\n"),
])
def test_space_files_in_yaml_and_toml_load_to_the_same_space(tmp_path, suffix, text):
    path = tmp_path / f"mine{suffix}"
    path.write_text(text)
    space = load_space(str(path))
    assert space.dims["d_model"] == Choice((32, 64))
    assert space.dims["lr"] == Range(1e-4, 1e-2, log=True)
    assert all(0 < config_to_schedule(c).lr <= 1e-2 for c in _sample(space, 10))


@pytest.mark.parametrize("suffix, text, message", [
    (".yaml", "d_model: [64\n", "is not valid YAML"),
    (".toml", "d_model = [64\n", "is not valid TOML"),
    (".yaml", "- 1\n- 2\n", "must map Schedule fields"),
    (".yaml", "widht: [64]\n", "unknown field(s) ['widht']"),
    (".yaml", "d_model: [60]\nn_heads: 7\n", "allows an invalid schedule"),
    (".yaml", "lr: {low: 1, hi: 2}\n", "must have keys low and high"),
    (".yaml", "lr: {low: a, high: 2}\n", "both must be numbers"),
    (".yaml", "lr: {low: 0.1, high: 0.01}\n", "must have low <= high"),
    (".yaml", "d_model: []\n", "is empty"),
    (".json", "{}", "neither a preset"),
])
def test_malformed_space_files_get_a_clear_error(tmp_path, suffix, text, message):
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        load_space(str(path))
    assert message in str(info.value)
