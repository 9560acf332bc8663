"""Drawing only: each function takes a result object and an optional Axes, and draws it.

matplotlib is imported here and nowhere else in analysis. Without an Axes, a function draws on
a new ``matplotlib.figure.Figure`` (no pyplot, no global state): the backend stays whatever the
user chose, so a notebook's inline plots keep working, and files are written without a display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from budgetune.analysis._frontier import FrontierInfo
from budgetune.analysis._tradeoffs import ShareEffect, SizeQuality

FORMATS = ("png", "svg", "pdf")


def _axes(ax):
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=(7, 4.5)).subplots()


def _colors(name: str, k: int):
    from matplotlib import colormaps

    return colormaps[name](np.linspace(0, 0.85, max(1, k)))


def plot_frontier(info: FrontierInfo, ax=None):
    """Budget points coloured by model size, other reports (curves) hollow, the envelope of
    the best recipe within the size limit, the fitted L(C) with its band (dashed, and labelled,
    when it is not to be quoted), and the pick per budget."""
    ax = _axes(ax)
    pts = info.points
    drawn = ax.scatter(pts["train_flops"], pts["val_loss_compressed"], c=np.log10(
        pts["n_params_nonemb"].clip(lower=1)), cmap="viridis", s=14, label="budget points")
    ax.figure.colorbar(drawn, ax=ax, label="log10 non-embedding parameters")
    if len(info.curves):
        ax.scatter(info.curves["train_flops"], info.curves["val_loss_compressed"],
                   facecolors="none", edgecolors="0.6", s=14,
                   label="other reports (not annealed: not a recipe)")
    limit = "" if info.max_bytes is None else f" within {info.max_bytes / 1e6:g} MB"
    if len(info.envelope.flops):
        ax.step(info.envelope.flops, info.envelope.loss, where="post", color="k", lw=1,
                label=f"envelope{limit}")
    fit = info.compute_fit
    if fit is not None:
        c = np.logspace(np.log10(info.envelope.flops.min()),
                        np.log10(info.envelope.flops.max()) + 0.5, 100)
        label = f"L(C) = {fit.E:.2f} + {fit.A:.3g}·C^-{fit.alpha:.3f}"
        if info.compute_reason:  # drawn as the data's trend only: no number is given for it
            label = f"L(C) fit, not quoted: {info.compute_reason}"[:90]
        ax.plot(c, fit.loss(c), "r--" if info.compute_reason else "r-", lw=1.5, label=label)
        if fit.samples and not info.compute_reason:
            band = np.array([fit.loss_interval(x) for x in c])
            ax.fill_between(c, band[:, 0], band[:, 1], color="r", alpha=0.15,
                            label="95% bootstrap band")
        ax.axvspan(info.largest_budget, c.max(), color="0.9", zorder=0,
                   label="extrapolated (beyond the largest measured budget)")
    if len(info.best):
        ax.scatter(info.best["train_flops"], info.best["loss_mean"], marker="*", s=160,
                   c="gold", edgecolors="k", zorder=5, label=f"best per budget{limit}")
    ax.set(xscale="log", xlabel="training FLOPs", ylabel="val_loss_compressed (nats)",
           title=f"Compute frontier ({info.model})")
    ax.legend(fontsize=7)
    return ax


def plot_isoflops(info: FrontierInfo, ax=None):
    """Uncompressed loss of the best recipe per size at each budget, with each profile's
    parabola and vertex."""
    ax = _axes(ax)
    for profile, color in zip(info.isoflops, _colors("plasma", len(info.isoflops))):
        ax.scatter(profile.n, profile.loss, color=color, s=18,
                   label=f"{profile.budget_flops:.2g} FLOPs")
        if profile.coeffs is not None:
            x = np.linspace(np.log(profile.n.min()), np.log(profile.n.max()), 50)
            ax.plot(np.exp(x), np.polyval(profile.coeffs, x), color=color, lw=1)
        if profile.n_opt is not None:
            ax.axvline(profile.n_opt, color=color, ls=":", lw=1)
    ax.set(xscale="log", xlabel="non-embedding parameters N",
           ylabel="val_loss, best per N (nats)", title=f"IsoFLOP profiles ({info.model})")
    ax.legend(fontsize=7)
    return ax


def plot_size_quality(profiles: list[SizeQuality], ax=None):
    """val_loss_compressed against compressed MB per training budget, with Pareto fronts."""
    ax = _axes(ax)
    for sq, color in zip(profiles, _colors("viridis", len(profiles))):
        ax.scatter(sq.megabytes, sq.loss, color=color, s=12, alpha=0.6)
        ax.step(sq.pareto_mb, sq.pareto_loss, where="post", color=color, lw=1.5,
                label=f"{sq.budget_flops:.2g} FLOPs: Pareto front")
    ax.set(xscale="log", xlabel="compressed size (MB)", ylabel="val_loss_compressed (nats)",
           title="Size against quality (train large, then compress)")
    ax.legend(fontsize=7)
    return ax


def plot_share_effect(effects: list[ShareEffect], ax=None):
    """Uncompressed loss against share_fraction per budget; 0 is the never-shared baseline."""
    ax = _axes(ax)
    for eff, color in zip(effects, _colors("viridis", len(effects))):
        ax.scatter(eff.share_fraction, eff.loss, color=color, s=12, alpha=0.6)
        ax.plot(eff.fractions, eff.mean_loss, "-o", color=color, ms=3,
                label=f"{eff.budget_flops:.2g} FLOPs: mean")
    ax.set(xlabel="share of steps trained shared (share_fraction_effective; 0 = never shared)",
           ylabel="val_loss (nats)",
           title="Share-then-unshare: effect of the switch point")
    ax.legend(fontsize=7)
    return ax


def save(ax, path: Path) -> Path:
    fig = ax.figure
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
