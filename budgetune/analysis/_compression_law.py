"""The compression-aware scaling law: a compressed model as a smaller effective model.

Frantar et al. 2025 ("Compression Scaling Laws: Unifying Sparsity and Quantization", arXiv
2502.16440) found that a model compressed to a cell c behaves like an uncompressed one with
fewer parameters, by a factor e_c that depends on the cell alone:

    L(N, D, c) = E + A / (N·e_c)^α + B / D^β                                 # nats

N the dense non-embedding parameters, D the training tokens, c = (bits, sparsity); at their
scale e ≈ 0.92 for 4-bit weights and ≈ 0.87 for 50% sparsity. E, A, B, α, β are shared by every
cell, so the uncompressed models fix the law and each cell adds one number.

The fit is ``_fit``'s: log L̂ = LSE(a − α·(log N + g_c), b − β·log D, e) with g_c = log e_c,
the Huber loss (δ = 1e-3) of log L̂ − log L, L-BFGS-B with analytic gradients
(``_fit.objective_parts`` chained through g_c), started from the best points of Chinchilla's
grid for (e, a, b, α, β), each once with every factor at 1 and once at 0.8. Internally log N
and log D are centred on their means (a' = a − α·mean log N, b' likewise): the same law, but
a' and α no longer trade off along a narrow valley, and L-BFGS-B takes several times fewer
steps (100 bootstrap refits of 30 models: 3 s instead of 17 s on a busy 2-core machine).

Choices, and why:

1. **e = 1 at the uncompressed cell** (32 bits, sparsity 0): A/(N·e)^α = (A·e^−α)/N^α, so one
   factor common to all cells is A in disguise; anchoring one cell makes the others relative to
   it. A table without uncompressed models cannot be fitted.
2. **Bounds** g_c ∈ [ln 1e-3, ln 1.5]: above 1, so that a cell that costs nothing (int8,
   e ≈ 1) sits inside its bounds with room for noise on both sides, not pinned at 1 and
   reported as a bound; 1.5 and 1e-3 are far from anything compression does (a cell 1,000×
   worse destroyed the model). A factor that stops at either bound is not a fitted value, and
   it drags the shared E, A, α with it (a cell claiming e = 2.5 moved the 4-bit factor from
   0.92 to 0.88 in tests/analysis): then the law is not quoted at all, and says which cell.
3. **Evidence**: budget points and their cells (``compressed_variants``): N the point's final
   ``n_params_nonemb`` (the dense count, Frantar's N), D its ``tokens``. Only cells the model
   was **trained** to: one-shot cells (pruned beyond its trained sparsity, no fine-tuning) are
   left out and counted. Their damage depends on how far past the trained sparsity they prune
   and on the model's size (Li et al. 2020: larger models lose less to pruning), not on the
   cell alone, so one e per cell would not describe it; and what the law recommends is a recipe
   to train. Quantization here is post-training (no QAT, unlike Frantar et al.): the bits
   factors are post-training quantization's.
4. Per budget, N and trained sparsity, only the training recipe of lowest uncompressed loss
   (seeds pooled), as L(N, D) takes the best recipe per N: the law has no term for a
   mistuned learning rate. Its seeds and all their cells stay.
5. **Bootstrap** over whole models (a budget point with every cell of it): the cells of one
   model share its training noise, so resampling rows would understate the spread. Each draw
   refits from the point estimate; a cell absent from a draw gives no factor in that draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from budgetune.analysis._candidates import (
    POINT_KEY,
    TRAINING_FIELDS,
    budget_points,
    compressed_variants,
)
from budgetune.analysis._fit import (
    _BOUNDS,
    FitError,
    FitOptions,
    Interval,
    _check_points,
    _grid_objectives,
    _minimize_from,
    chinchilla_grid,
    interval,
    objective_parts,
)
from budgetune.analysis._frontier import MIN_BUDGETS, fit_reason
from budgetune.analysis._load import Results

Cell = tuple[int, float]  # (quant_bits, sparsity)
BASE_CELL: Cell = (32, 0.0)  # uncompressed: e = 1 by definition
LOG_FACTOR_BOUNDS = (math.log(1e-3), math.log(1.5))  # g = ln e (choice 2)
FACTOR_STARTS = (1.0, 0.8)  # every factor starts at each of these
CENTRED_BOUNDS = (-40.0, 40.0)  # ln of the N and D terms at the data's mean log N, log D
WHAT = "the compression-aware law"


def cell_text(cell: Cell) -> str:
    """"4 bits, sparsity 0.5"."""
    return f"{cell[0]} bits, sparsity {cell[1]:g}"


@dataclass(frozen=True)
class CompressionLawFit:
    """L(N, D, c) = E + A/(N·e_c)^α + B/D^β, fitted (module docstring)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    factors: dict[Cell, float]  # e_c per cell, BASE_CELL's 1 included
    objective: float  # summed Huber loss at the optimum
    status: str  # of E, A, B, α, β: "converged", "hit_bound" or "not_converged"
    at_bound: tuple[Cell, ...]  # cells whose factor stopped at a bound: not fitted values
    n_points: int  # (model, cell) losses fitted
    n_models: int  # budget points (trained models)
    budgets: tuple[float, ...]  # distinct budgets of those models, ascending  # FLOPs
    cell_models: dict[Cell, int]  # models measured at each cell
    intervals: dict[str, Interval] = field(default_factory=dict)  # E, alpha, beta
    factor_intervals: dict[Cell, Interval] = field(default_factory=dict)

    @property
    def n_params(self) -> int:
        return 5 + len(self.factors) - 1

    def loss(self, n, d, cell: Cell = BASE_CELL):
        """The law (nats) at N parameters, D tokens, compressed to ``cell``."""
        n_eff = np.multiply(n, self.factors[cell])
        return self.E + self.A / np.power(n_eff, self.alpha) + self.B / np.power(d, self.beta)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON types: cells as a list of {quant_bits, sparsity, e, interval, ...}."""
        out = {k: getattr(self, k) for k in ("E", "A", "B", "alpha", "beta", "objective",
                                             "status", "n_points", "n_models")}
        out["budgets"] = list(self.budgets)
        out["intervals"] = {k: vars(v) for k, v in self.intervals.items()}
        out["factors"] = [factor_entry(self, c) for c in self.factors]
        return out


def factor_entry(fit: CompressionLawFit, cell: Cell) -> dict[str, object]:
    """One cell's factor as it is shown: e, its 95% interval, models, at a bound or not."""
    iv = fit.factor_intervals.get(cell)
    return {"quant_bits": cell[0], "sparsity": cell[1], "e": fit.factors[cell],
            "interval": None if cell == BASE_CELL or iv is None else [iv.low, iv.high],
            "n_models": fit.cell_models[cell], "at_bound": cell in fit.at_bound,
            "reference": cell == BASE_CELL}


@dataclass(frozen=True)
class CompressionLaw:
    """The law for one model family, or why it is not to be quoted."""

    fit: CompressionLawFit | None
    reason: str | None  # why the law is not quoted as numbers; None when it is
    notes: tuple[str, ...]  # what was left out of the fit, and why

    def quoted_cells(self) -> list[Cell]:
        """Cells whose factor may be used: all of them when the law is quoted, else none."""
        return [] if self.fit is None or self.reason is not None else list(self.fit.factors)


def _objective(theta, log_n, log_d, log_l, delta, cell, n_cells):
    """The L(N, D) objective at log N + g_c; ∂/∂g_c = −α·Σ_{rows of c} w."""
    g = np.concatenate(([0.0], theta[5:]))[cell]  # (n,): 0 at the base cell
    loss, grad, w = objective_parts(theta, log_n + g, log_d, log_l, delta)
    grad_g = -theta[3] * np.bincount(cell, weights=w, minlength=n_cells)[1:]
    return loss, np.concatenate((grad, grad_g))


def _starts(log_n, log_d, log_l, cell, n_cells, options: FitOptions) -> np.ndarray:
    """The best grid points for (e, a, b, α, β) on the uncompressed rows (all rows when
    fewer than 5), each with every g_c at ln of each of FACTOR_STARTS."""
    grid = chinchilla_grid()
    base = cell == 0 if (cell == 0).sum() >= 5 else np.ones(len(cell), bool)
    if options.top_k is not None:
        scores = _grid_objectives(grid, log_n[base], log_d[base], log_l[base],
                                  options.huber_delta)
        grid = grid[np.argsort(scores)[: options.top_k]]
    return np.vstack([np.hstack([grid, np.full((len(grid), n_cells - 1), math.log(f))])
                      for f in FACTOR_STARTS])


def fit_compression_law(n, d, loss, cells, models, budgets,
                        options: FitOptions = FitOptions()) -> CompressionLawFit:
    """Fit L(N, D, c) to rows (N, D, L, cell), each of a model (any hashable id; the bootstrap
    resamples models) trained for a budget (FLOPs). ``cells``: (quant_bits, sparsity) pairs.
    Raises ``FitError`` when no row is of the uncompressed cell, or the data are unusable."""
    log_n, log_d, log_l = _check_points(n, d, loss)
    keys = [(int(b), round(float(s), 4)) for b, s in cells]
    if BASE_CELL not in keys:
        raise FitError("no model was measured uncompressed (32 bits, sparsity 0), which "
                       "anchors the factors (e = 1 there)")
    order = [BASE_CELL, *sorted(set(keys) - {BASE_CELL}, key=lambda c: (-c[0], c[1]))]
    index = {c: i for i, c in enumerate(order)}
    cell = np.array([index[c] for c in keys])
    model = pd.factorize(pd.Series(list(models)))[0]
    # Centred logs (module docstring): a − α·log N = (a − α·c_N) − α·(log N − c_N).
    c_n, c_d = float(log_n.mean()), float(log_d.mean())
    starts = _starts(log_n, log_d, log_l, cell, len(order), options)
    starts[:, 1] -= starts[:, 3] * c_n
    starts[:, 2] -= starts[:, 4] * c_d
    bounds = ([_BOUNDS[0], CENTRED_BOUNDS, CENTRED_BOUNDS, *_BOUNDS[3:]]
              + [LOG_FACTOR_BOUNDS] * (len(order) - 1))
    args = (log_n - c_n, log_d - c_d, log_l, options.huber_delta, cell, len(order))
    theta, objective, status = _minimize_from(starts, args, _objective, bounds, checked=5)
    lo, hi = LOG_FACTOR_BOUNDS
    at_bound = tuple(c for c, g in zip(order[1:], theta[5:])
                     if math.isclose(g, lo, abs_tol=1e-6) or math.isclose(g, hi, abs_tol=1e-6))
    intervals, factor_intervals = {}, {}
    if options.bootstrap:
        intervals, factor_intervals = _bootstrap(theta, args, model, order, bounds, options)
    e, a, b, alpha, beta = (float(x) for x in theta[:5])
    a, b = a + alpha * c_n, b + beta * c_d
    per_cell = pd.DataFrame({"cell": cell, "model": model}).drop_duplicates()
    counts = per_cell.groupby("cell").size()
    return CompressionLawFit(
        math.exp(e), math.exp(a), math.exp(b), alpha, beta,
        {c: 1.0 if i == 0 else float(math.exp(theta[4 + i])) for i, c in enumerate(order)},
        objective, status, at_bound, len(log_n), int(model.max()) + 1,
        tuple(sorted({float(x) for x in budgets})),
        {c: int(counts[i]) for i, c in enumerate(order)}, intervals, factor_intervals)


def _bootstrap(theta, args, model, order, bounds, options: FitOptions):
    """Refit on resamples of whole models (choice 5); intervals of E, α, β and each e_c."""
    log_n, log_d, log_l, delta, cell, n_cells = args
    rows = [np.flatnonzero(model == m) for m in range(model.max() + 1)]
    rng = np.random.default_rng(options.seed)
    draws = []
    for _ in range(options.bootstrap):
        idx = np.concatenate([rows[m] for m in rng.integers(0, len(rows), len(rows))])
        present = np.bincount(cell[idx], minlength=n_cells) > 0
        if not present[0]:  # no uncompressed model drawn: nothing anchors the factors
            continue
        x, _, _ = _minimize_from(theta[None], (log_n[idx], log_d[idx], log_l[idx], delta,
                                               cell[idx], n_cells), _objective, bounds,
                                 checked=5)
        factors = np.where(present[1:], np.exp(x[5:]), np.nan)
        draws.append(np.r_[math.exp(x[0]), x[3], x[4], factors])
    draws = np.array(draws).reshape(-1, 3 + n_cells - 1)
    intervals = {k: interval(draws[:, i]) for i, k in enumerate(("E", "alpha", "beta"))}
    return intervals, {c: interval(draws[:, 2 + i]) for i, c in enumerate(order) if i > 0}


def compression_points(results: Results) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The rows the law is fitted to (module docstring, choices 3 and 4), and notes on what
    was left out. Columns: ``POINT_KEY``, ``N``, ``D``, ``quant_bits``, ``sparsity``,
    ``loss`` (val_loss_compressed of the model at that cell)."""
    variants = compressed_variants(results)
    points = budget_points(results)[POINT_KEY + ["val_loss"]]
    v = variants.merge(points, on=POINT_KEY).rename(columns={"n_params_nonemb": "N",
                                                             "tokens": "D"})
    recipes = (v.drop_duplicates(POINT_KEY)
               .groupby(["budget_flops", *TRAINING_FIELDS], dropna=False)
               .agg(N=("N", "mean"), val_loss=("val_loss", "mean")).reset_index())
    best = recipes.loc[recipes.groupby(["budget_flops", "N", "prune_sparsity"])["val_loss"]
                       .idxmin(), ["budget_flops", *TRAINING_FIELDS]]
    kept = v.merge(best, on=["budget_flops", *TRAINING_FIELDS])
    one_shot = kept["one_shot"].astype(bool)
    rows = kept[~one_shot & kept["loss"].notna()]
    notes = []
    if one_shot.any():
        notes.append(f"{int(one_shot.sum())} one-shot cells (pruned beyond the trained "
                     "sparsity, no fine-tuning) left out: their damage is not one factor per "
                     "cell")
    n_other = len(recipes) - len(best)
    if n_other:
        notes.append(f"{n_other} recipes left out: another recipe of the same budget, N and "
                     "trained sparsity had a lower uncompressed loss")
    return (rows[POINT_KEY + ["N", "D", "quant_bits", "sparsity", "loss"]]
            .reset_index(drop=True), tuple(notes))


def compression_law(results: Results, options: FitOptions = FitOptions()) -> CompressionLaw:
    """The law for ``results`` (one model family), or why it is not quoted: it rests on fewer
    than 3 budgets, measured no compressed cell, passes exactly through its points, or a
    parameter stopped at a bound (``fit_reason`` for E, A, B, α, β; choice 2 for a factor)."""
    n_points_budgets = budget_points(results)["budget_flops"].nunique()
    if n_points_budgets < MIN_BUDGETS:  # no need to gather the cells (a 1,000-trial table)
        return CompressionLaw(None, fit_reason(None, n_points_budgets, WHAT, math.nan), ())
    rows, notes = compression_points(results)
    cells = set(zip(rows["quant_bits"].astype(int), rows["sparsity"].round(4)))
    if len(cells - {BASE_CELL}) == 0:
        return CompressionLaw(None, f"{WHAT}: no model was measured compressed to a cell it "
                              "was trained to; nothing to fit a factor to", notes)
    n_budgets = rows["budget_flops"].nunique()
    if n_budgets < MIN_BUDGETS:  # fitting would only draw a curve through the points
        return CompressionLaw(None, fit_reason(None, n_budgets, WHAT, math.nan), notes)
    try:
        fit = fit_compression_law(rows["N"], rows["D"], rows["loss"],
                                  zip(rows["quant_bits"], rows["sparsity"]),
                                  map(tuple, rows[POINT_KEY].to_numpy()),
                                  rows["budget_flops"], options)
    except FitError as e:
        return CompressionLaw(None, f"no fit of {WHAT}: {e}", notes)
    return CompressionLaw(fit, quote_reason(fit, n_budgets, float(rows["loss"].min())), notes)


def quote_reason(fit: CompressionLawFit, n_budgets: int, lowest_loss: float) -> str | None:
    """Why ``fit`` is not to be quoted as numbers, or None: ``fit_reason``'s rules for E, A, B,
    α, β; a factor at its bound (choice 2); or, with a bootstrap, a 95% interval of α, β or a
    factor that reaches its bound: the point estimate is inside, but the table does not pin
    that parameter down (the embedded default's table once gave α 1.32 [0.10, 10] and a sparse
    factor 1.22 [0.78, 1.5], a sparse model "better" than the dense one)."""
    reason = fit_reason(fit, n_budgets, WHAT, lowest_loss, fit.n_params)
    if reason is None and fit.at_bound:
        cells = "; ".join(f"{cell_text(c)} (e = {fit.factors[c]:.3g})" for c in fit.at_bound)
        reason = (f"{WHAT}: the factor of {cells} stopped at its bound [0.001, 1.5]: not a "
                  "fitted value, and the factors fitted beside it are pulled with it: the "
                  "table is not one effective size per cell")
    if reason is None:
        e_low, e_high = (math.exp(g) for g in LOG_FACTOR_BOUNDS)
        checks = [(name, fit.intervals.get(key), *_BOUNDS[3]) for name, key in
                  (("α", "alpha"), ("β", "beta"))]
        checks += [(f"the factor of {cell_text(c)}", iv, e_low, e_high)
                   for c, iv in fit.factor_intervals.items()]
        loose = [f"{name} [{iv.low:.3g}, {iv.high:.3g}]" for name, iv, low, high in checks
                 if iv is not None and (iv.low <= low * (1 + 1e-6) + 1e-9
                                        or iv.high >= high * (1 - 1e-6))]
        if loose:
            reason = (f"{WHAT}: the bootstrap interval of {'; '.join(loose)} reaches its "
                      "bound: the table does not pin it down; search more budgets or sizes")
    return reason
