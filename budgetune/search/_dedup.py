"""Never train the same schedule twice in one experiment.

Over a finite space TPE soon proposes schedules it has already tried; with the seed fixed, a
repeat would train the identical model again. ``DedupSearcher`` sits between Tune and the
searcher: when a proposal repeats one already seen, it reports the known objective back to
the searcher (or a failure while the first is still running) and asks again, up to
``max_tries`` times, so the searcher still learns from the repeat and the cluster trains
something new. Tune checkpoints its memory with the other searcher wrappers (``get_state``), so
it survives ``--resume``.
"""

from __future__ import annotations

import json

from ray.tune.search import Searcher

DEFAULT_MAX_TRIES = 50


def _key(config: dict) -> str:
    return json.dumps(config, sort_keys=True, default=str)


class DedupSearcher(Searcher):
    def __init__(self, searcher: Searcher, max_tries: int = DEFAULT_MAX_TRIES):
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher, self.max_tries = searcher, max_tries
        self.known: dict[str, float | None] = {}  # schedule -> objective (None while running)
        self.inner_id: dict[str, str] = {}  # Tune's trial id -> the searcher's
        self.key_of: dict[str, str] = {}  # Tune's trial id -> schedule

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> dict | None:
        for attempt in range(self.max_tries):
            inner = trial_id if attempt == 0 else f"{trial_id}-repeat{attempt}"
            config = self.searcher.suggest(inner)
            if config is None or config == Searcher.FINISHED:
                return config
            key = _key(config)
            if key not in self.known or attempt == self.max_tries - 1:
                self.known[key], self.inner_id[trial_id] = None, inner
                self.key_of[trial_id] = key
                return config
            value = self.known[key]
            if value is None:
                self.searcher.on_trial_complete(inner, None, error=True)
            else:
                self.searcher.on_trial_complete(inner, {self.metric: value})
        return None  # unreachable: the last attempt returns

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(self.inner_id.get(trial_id, trial_id), result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        self.searcher.on_trial_complete(self.inner_id.get(trial_id, trial_id), result,
                                        error=error)
        key = self.key_of.get(trial_id)
        if key is not None and result and not error and self.metric in result:
            self.known[key] = result[self.metric]

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)

    def get_state(self) -> dict:  # Tune saves wrappers' state; the base searcher saves its own
        return {"known": dict(self.known), "inner_id": dict(self.inner_id),
                "key_of": dict(self.key_of), "max_tries": self.max_tries}

    def set_state(self, state: dict) -> None:
        self.known, self.inner_id = state["known"], state["inner_id"]
        self.key_of, self.max_tries = state["key_of"], state["max_tries"]
