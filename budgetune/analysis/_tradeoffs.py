"""Two views of a search besides the frontier, computed as result objects for ``_plot``.

- Size against quality (Li et al. 2020, "Train Large, Then Compress"): per training budget,
  every completed trial's compressed variants (its own target and its compression grid) as
  (compressed MB, val_loss_compressed), and their Pareto front: the smallest loss at each size.
- The effect of share_fraction (Yang et al. 2021): per budget, final loss against the fraction
  of training spent with shared blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from budgetune.analysis._load import Results, completed_trials


@dataclass(frozen=True)
class SizeQuality:
    budget_flops: float
    megabytes: np.ndarray  # (k,) compressed size of each variant  # MB (10^6 bytes)
    loss: np.ndarray  # (k,) its val_loss_compressed  # nats
    n_params_nonemb: np.ndarray  # (k,) the trained model's size, for colour
    pareto_mb: np.ndarray  # the front, by increasing size
    pareto_loss: np.ndarray


def pareto_front(size: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points not beaten by any smaller-or-equal point: loss strictly falls as size grows."""
    order = np.lexsort((loss, size))
    front_s, front_l, best = [], [], np.inf
    for i in order:
        if loss[i] < best:
            front_s.append(size[i])
            front_l.append(loss[i])
            best = loss[i]
    return np.array(front_s), np.array(front_l)


def size_quality(results: Results) -> list[SizeQuality]:
    done = completed_trials(results)
    keys = ["experiment", "trial_id"]
    own = done[keys + ["budget_flops", "compressed_bytes", "val_loss_compressed", "N"]]
    grid = results.grid.merge(done[keys + ["N"]], on=keys)[own.columns]
    variants = pd.concat([own, grid], ignore_index=True)
    out = []
    for budget, g in variants.groupby("budget_flops"):
        mb, loss = g["compressed_bytes"].to_numpy() / 1e6, g["val_loss_compressed"].to_numpy()
        front = pareto_front(mb, loss)
        out.append(SizeQuality(float(budget), mb, loss, g["N"].to_numpy(), *front))
    return out


@dataclass(frozen=True)
class ShareEffect:
    budget_flops: float
    share_fraction: np.ndarray  # (k,) each completed trial's fraction
    loss: np.ndarray  # (k,) its final val_loss (uncompressed: sharing is about training)
    fractions: np.ndarray  # distinct fractions
    mean_loss: np.ndarray  # mean final loss at each


def share_effect(results: Results) -> list[ShareEffect]:
    done = completed_trials(results)
    out = []
    for budget, g in done.groupby("budget_flops"):
        means = g.groupby("share_fraction")["val_loss"].mean()
        out.append(ShareEffect(float(budget), g["share_fraction"].to_numpy(),
                               g["val_loss"].to_numpy(), means.index.to_numpy(),
                               means.to_numpy()))
    return out
