"""Load a results directory and apply DESIGN.md's evidence rules.

- Every search folder under the directory is read through ``budgetune.results``; tables of
  another schema version or of several corpora are never mixed silently.
- The evidence is the *budget point* (``point`` is true: a report annealed for its
  ``budget_flops``); ``analysis._candidates.budget_points`` is its one definition. Other
  reports are curves: drawn, never fitted or offered.
- Rows of two searches are never joined: every join is on ``search_id`` as well.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from budgetune.results import (
    READABLE_SCHEMAS,
    SCHEMA_VERSION,
    WHOLE_MODEL_SCHEMA,
    ResultsError,
    read_table,
    search_folders,
)


@dataclass(frozen=True)
class Results:
    reports: pd.DataFrame
    trials: pd.DataFrame
    grid: pd.DataFrame

    @property
    def models(self) -> list[str]:
        return sorted(self.reports["model"].unique())

    def for_model(self, model: str | None) -> Results:
        """The rows of one model family (masked- and causal-LM losses are not comparable)."""
        if model is None:
            if len(self.models) > 1:
                raise ResultsError(
                    f"The results hold the model families {self.models}, whose losses are not "
                    "comparable; pass --model to choose one."
                )
            return self
        if model not in self.models:
            raise ResultsError(f"The results hold no trial of model {model!r} (they hold "
                               f"{self.models}); pass one of those to --model.")
        key = ["search_id", "experiment", "trial_id", "budget_flops"]
        keep = self.reports.loc[self.reports["model"] == model, key].drop_duplicates()
        return Results(self.reports[self.reports["model"] == model],
                       self.trials[self.trials["model"] == model],
                       self.grid.merge(keep, on=key))


def load_results(root: str | os.PathLike, name: str | None = None,
                 corpus_id: str | None = None) -> Results:
    """Read every search under ``root`` (or only ``name``) into three validated frames."""
    folders = search_folders(root)
    if name is not None:
        folders = [f for f in folders if f.name == name]
    if not folders:
        which = f"a search named {name!r}" if name else "any search"
        raise ResultsError(f"{str(root)!r} holds no results of {which}; run `budgetune search "
                           f"--results {root}` first.")
    tables = {t: pd.concat([read_table(f, t) for f in folders], ignore_index=True)
              for t in ("reports", "trials", "grid")}
    if tables["reports"].empty:
        raise ResultsError(f"The results under {str(root)!r} hold no reports yet; wait for a "
                           "trial to report, or check the search's log.")
    for frame in tables.values():
        versions = set(frame["schema_version"].unique())
        if versions - set(READABLE_SCHEMAS):
            raise ResultsError(f"Results of schema versions {sorted(versions)} cannot be read "
                               f"by this budgetune (schema {SCHEMA_VERSION}); use the "
                               "budgetune version that wrote them.")
    versions = set(tables["reports"]["schema_version"].unique())
    if min(versions) < WHOLE_MODEL_SCHEMA <= max(versions):
        raise ResultsError(f"The results under {str(root)!r} mix searches from before "
                           "whole-model compression (schema <= 3: the token embedding stayed "
                           "fp32) with newer ones, whose compressed sizes and losses are not "
                           "comparable; analyse them apart with --name.")
    corpora = sorted(tables["reports"]["corpus_id"].unique())
    if corpus_id is not None:
        tables = {t: f[f["corpus_id"] == corpus_id] for t, f in tables.items()}
        if tables["reports"].empty:
            raise ResultsError(f"No reports of corpus {corpus_id!r}; the results hold "
                               f"{corpora}.")
    elif len(corpora) > 1:
        raise ResultsError(f"The results mix corpora {corpora}, whose losses are not "
                           "comparable; pass --corpus-id to choose one.")
    return Results(*(tables[t].reset_index(drop=True) for t in ("reports", "trials", "grid")))

