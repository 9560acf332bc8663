"""Drawing only: each function takes a result object and an optional Axes, and draws it.

matplotlib is imported here and nowhere else in analysis, with the non-interactive Agg backend,
so plotting works on machines without a display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from budgetune.analysis._frontier import FrontierInfo
from budgetune.analysis._tradeoffs import ShareEffect, SizeQuality

FORMATS = ("png", "svg", "pdf")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _axes(ax):
    if ax is not None:
        return ax
    return _pyplot().subplots(figsize=(7, 4.5))[1]


def plot_frontier(info: FrontierInfo, ax=None):
    """Every evaluation coloured by model size, early-stopped ones hollow, the envelope, the
    fitted L(C) with its band, and the best point per budget."""
    ax = _axes(ax)
    plt = _pyplot()
    done = info.all_reports
    points = ax.scatter(done["train_flops"], done[info.column], c=np.log10(
        done["n_params_nonemb"].clip(lower=1)), cmap="viridis", s=14, label="completed trials")
    plt.colorbar(points, ax=ax, label="log10 non-embedding parameters")
    if len(info.early):
        ax.scatter(info.early["train_flops"], info.early[info.column], facecolors="none",
                   edgecolors="0.6", s=14, label="stopped early (not a recipe)")
    ax.step(info.envelope.flops, info.envelope.loss, where="post", color="k", lw=1,
            label="envelope")
    fit = info.compute_fit
    if fit is not None:
        c = np.logspace(np.log10(info.envelope.flops.min()),
                        np.log10(info.envelope.flops.max()) + 0.5, 100)
        ax.plot(c, fit.loss(c), "r-", lw=1.5,
                label=f"L(C) = {fit.E:.2f} + {fit.A:.3g}·C^-{fit.alpha:.3f}")
        if fit.samples:
            band = np.array([fit.loss_interval(x) for x in c])
            ax.fill_between(c, band[:, 0], band[:, 1], color="r", alpha=0.15,
                            label="95% bootstrap band")
    best = info.completed.loc[info.completed.groupby("budget_flops")[info.column].idxmin()]
    ax.scatter(best["train_flops"], best[info.column], marker="*", s=160, c="gold",
               edgecolors="k", zorder=5, label="best per budget")
    ax.set(xscale="log", xlabel="training FLOPs", ylabel=f"{info.column} (nats)",
           title=f"Compute frontier ({info.model})")
    ax.legend(fontsize=7)
    return ax


def plot_isoflops(info: FrontierInfo, ax=None):
    """Final loss against model size per budget, with each profile's parabola and vertex."""
    ax = _axes(ax)
    colors = _pyplot().cm.plasma(np.linspace(0, 0.85, max(1, len(info.isoflops))))
    for profile, color in zip(info.isoflops, colors):
        ax.scatter(profile.n, profile.loss, color=color, s=18,
                   label=f"{profile.budget_flops:.2g} FLOPs")
        if profile.coeffs is not None:
            x = np.linspace(np.log(profile.n.min()), np.log(profile.n.max()), 50)
            ax.plot(np.exp(x), np.polyval(profile.coeffs, x), color=color, lw=1)
        if profile.n_opt is not None:
            ax.axvline(profile.n_opt, color=color, ls=":", lw=1)
    ax.set(xscale="log", xlabel="non-embedding parameters N", ylabel=f"final {info.column}",
           title=f"IsoFLOP profiles ({info.model})")
    ax.legend(fontsize=7)
    return ax


def plot_size_quality(profiles: list[SizeQuality], ax=None):
    """val_loss_compressed against compressed MB per training budget, with Pareto fronts."""
    ax = _axes(ax)
    colors = _pyplot().cm.viridis(np.linspace(0, 0.85, max(1, len(profiles))))
    for sq, color in zip(profiles, colors):
        ax.scatter(sq.megabytes, sq.loss, color=color, s=12, alpha=0.6)
        ax.step(sq.pareto_mb, sq.pareto_loss, where="post", color=color, lw=1.5,
                label=f"{sq.budget_flops:.2g} FLOPs: Pareto front")
    ax.set(xscale="log", xlabel="compressed size (MB)", ylabel="val_loss_compressed (nats)",
           title="Size against quality (train large, then compress)")
    ax.legend(fontsize=7)
    return ax


def plot_share_effect(effects: list[ShareEffect], ax=None):
    """Final loss against share_fraction per budget; 0 is the never-shared baseline."""
    ax = _axes(ax)
    colors = _pyplot().cm.viridis(np.linspace(0, 0.85, max(1, len(effects))))
    for eff, color in zip(effects, colors):
        ax.scatter(eff.share_fraction, eff.loss, color=color, s=12, alpha=0.6)
        ax.plot(eff.fractions, eff.mean_loss, "-o", color=color, ms=3,
                label=f"{eff.budget_flops:.2g} FLOPs: mean")
    ax.set(xlabel="share_fraction (0 = never shared)", ylabel="final val_loss (nats)",
           title="Share-then-unshare: effect of the switch point")
    ax.legend(fontsize=7)
    return ax


def save(ax, path: Path) -> Path:
    fig = ax.figure
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path
