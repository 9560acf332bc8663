"""The searcher never proposes a schedule it has already proposed, while it has new ones."""

import optuna
from ray.tune.search.optuna import OptunaSearch

from budgetune.search._dedup import DedupSearcher
from budgetune.spaces import Choice, Space, define_by_run


def _searcher(n_startup: int = 2) -> DedupSearcher:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = Space("t", {"d_model": Choice((32, 64)), "n_layers": Choice((1, 2)),
                        "n_heads": 2})
    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=n_startup)
    return DedupSearcher(OptunaSearch(space=define_by_run(space), sampler=sampler,
                                      metric="objective", mode="min"))


def test_the_four_schedules_of_a_four_point_space_come_first_each_once():
    searcher = _searcher()
    configs = []
    for i in range(4):
        config = searcher.suggest(f"t{i}")
        configs.append((config["d_model"], config["n_layers"]))
        searcher.on_trial_complete(f"t{i}", {"objective": 5.0 - i})
    assert len(set(configs)) == 4


def test_a_repeat_is_answered_with_its_known_value_so_the_searcher_still_learns():
    searcher = _searcher()
    for i in range(4):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"objective": float(config["d_model"])})
    searcher.suggest("t4")  # the space is exhausted: repeats were told to optuna first
    study = searcher.searcher._ot_study
    values = [t.value for t in study.trials if t.state.name == "COMPLETE"]
    assert len(values) > 4 and set(values) <= {32.0, 64.0}


def test_its_memory_round_trips_through_get_and_set_state():
    searcher = _searcher()
    config = searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"objective": 1.0})
    fresh = _searcher()
    fresh.set_state(searcher.get_state())
    assert list(fresh.known.values()) == [1.0] and fresh.inner_id == {"t0": "t0"}
    assert config
