"""Two views of a search besides the frontier, computed as result objects for ``_plot``.

- Size against quality (Li et al. 2020, "Train Large, Then Compress"): per training budget,
  every budget point's compressed variants (its own target and its compression grid,
  ``compressed_variants``) as (compressed MB, val_loss_compressed), and their Pareto front: the
  smallest loss at each size. This is compression's frontier; L(N, D) stays uncompressed.
- The effect of share_fraction (Yang et al. 2021): per budget, the budget points' uncompressed
  loss against the fraction of training spent with shared blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from budgetune.analysis._candidates import budget_points, compressed_variants, dense_points
from budgetune.analysis._load import Results


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
    variants = compressed_variants(results)
    out = []
    for budget, g in variants.groupby("budget_flops"):
        mb, loss = g["compressed_bytes"].to_numpy() / 1e6, g["loss"].to_numpy()
        front = pareto_front(mb, loss)
        out.append(SizeQuality(float(budget), mb, loss, g["n_params_nonemb"].to_numpy(),
                               *front))
    return out


@dataclass(frozen=True)
class ShareEffect:
    budget_flops: float
    share_fraction: np.ndarray  # (k,) each budget point's effective fraction
    loss: np.ndarray  # (k,) its val_loss (uncompressed: sharing is about training)
    fractions: np.ndarray  # distinct fractions
    mean_loss: np.ndarray  # mean final loss at each


def share_effect(results: Results) -> list[ShareEffect]:
    """Per budget, the dense-trained budget points' val_loss by the share of their steps
    really trained shared (``share_fraction_effective``: a WSD point's switch sits on its main
    line, so a planned 0.3 may be 0.8 at a small budget); sparse-trained points are left out:
    their val_loss is of the pruned model."""
    done = dense_points(budget_points(results))  # a sparse-trained model's loss is its own
    done = done.assign(share=done["share_fraction_effective"].astype(float).round(3))
    out = []
    for budget, g in done.groupby("budget_flops"):
        means = g.groupby("share")["val_loss"].mean()
        out.append(ShareEffect(float(budget), g["share"].to_numpy(),
                               g["val_loss"].to_numpy(), means.index.to_numpy(),
                               means.to_numpy()))
    return out
