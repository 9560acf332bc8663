"""Parametric scaling-law fits, as the Chinchilla replication did them.

    L(N, D) = E + A / N^α + B / D^β                        (Hoffmann et al. 2022, approach 3)

is fitted in log space as log L̂ = LSE(a − α·log N, b − β·log D, e), with A = eᵃ, B = eᵇ,
E = eᵉ, minimising the Huber loss (δ = 1e-3) of log L̂ − log L with L-BFGS-B and analytic
gradients, started from a grid of initialisations (Besiroglu et al. 2024, arXiv 2404.10102).
Their refit of Chinchilla's own points gave E = 1.82, A = 482, B = 2085, α = 0.35, β = 0.37.

Speed: the replication ran L-BFGS-B from all 4500 grid points. The objective is cheap to
evaluate on the whole grid at once, so we evaluate it there, run L-BFGS-B from the ``top_k``
best starts only and keep the best optimum; tests/analysis checks that this finds the same
optimum as the full grid. The compute-optimal allocation for C = 6·N·D follows:

    N_opt(C) = G·(C/6)^a,  D_opt(C) = G⁻¹·(C/6)^b,  a = β/(α+β),  b = α/(α+β),
    G = (α·A / (β·B))^(1/(α+β)).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

DEFAULT_HUBER_DELTA = 1e-3
DEFAULT_TOP_K = 8  # starts refined with L-BFGS-B, out of the full grid
DEFAULT_BOOTSTRAP_SEED = 0
# The replication's grid: e ∈ {-1, -.5, …, 1}, a, b ∈ {0, 5, …, 25}, α, β ∈ {0, .5, …, 2}.
CHINCHILLA_GRID = {
    "e": np.arange(-1.0, 1.01, 0.5),
    "a": np.arange(0.0, 25.1, 5.0),
    "b": np.arange(0.0, 25.1, 5.0),
    "alpha": np.arange(0.0, 2.01, 0.5),
    "beta": np.arange(0.0, 2.01, 0.5),
}
_BOUNDS = [(-10, 10), (-20, 60), (-20, 60), (0, 10), (0, 10)]  # e, a, b, α, β


class FitError(RuntimeError):
    """A fit could not be made at all (too few points, non-finite data)."""


@dataclass(frozen=True)
class FitOptions:
    huber_delta: float = DEFAULT_HUBER_DELTA
    top_k: int | None = DEFAULT_TOP_K  # None runs L-BFGS-B from every grid start
    bootstrap: int = 0  # resamples for intervals; 0 for none
    seed: int = DEFAULT_BOOTSTRAP_SEED


@dataclass(frozen=True)
class Interval:
    low: float  # 2.5th percentile of the bootstrap
    high: float  # 97.5th percentile
    std: float  # bootstrap standard error


@dataclass(frozen=True)
class ScalingLawFit:
    """L(N, D) = E + A/N^α + B/D^β, fitted; intervals present when bootstrapped."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float  # summed Huber loss at the optimum
    status: str  # "converged", "hit_bound" or "not_converged"
    n_points: int
    intervals: dict[str, Interval] = field(default_factory=dict)

    @property
    def a(self) -> float:
        """Exponent of N_opt ∝ C^a."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D_opt ∝ C^b."""
        return self.alpha / (self.alpha + self.beta)

    def loss(self, n: np.ndarray | float, d: np.ndarray | float) -> np.ndarray | float:
        return self.E + self.A / np.power(n, self.alpha) + self.B / np.power(d, self.beta)

    def optimal_allocation(self, flops: float) -> tuple[float, float, float]:
        """(N_opt, D_opt, L at that allocation) for compute C = 6·N·D: Chinchilla's closed
        form, for tables costed that way (``budgetune fit``). budgetune's own trials cost more
        per token than 6·N (attention, the head); ``best`` allocates with ``_allocate``."""
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
        n_opt = g * (flops / 6) ** self.a
        d_opt = (flops / 6) / n_opt
        return n_opt, d_opt, float(self.loss(n_opt, d_opt))

    def to_dict(self) -> dict[str, object]:
        out = {k: getattr(self, k) for k in ("E", "A", "B", "alpha", "beta", "a", "b",
                                             "objective", "status", "n_points")}
        out["intervals"] = {k: vars(v) for k, v in self.intervals.items()}
        return out


def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss and its derivative, elementwise."""
    small = np.abs(r) <= delta
    loss = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
    return loss, np.where(small, r, delta * np.sign(r))


def _objective(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray,
               delta: float) -> tuple[float, np.ndarray]:
    """Summed Huber loss of LSE(a − α·log N, b − β·log D, e) − log L, and its gradient."""
    loss, grad, _ = objective_parts(theta, log_n, log_d, log_l, delta)
    return loss, grad


def objective_parts(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray,
                    log_l: np.ndarray, delta: float) -> tuple[float, np.ndarray, np.ndarray]:
    """``_objective``, and w = ∂loss/∂(a − α·log N) per point, (n,): a law whose N term
    carries more parameters (the compression-aware law's log e_c) chains its gradient on it.

    The log-sum-exp is written out (max-shifted) rather than called: on a few hundred points
    numpy's per-call overhead dominates, and the grid comparison runs this 10^5 times.
    """
    e, a, b, alpha, beta = theta[:5]
    t1, t2 = a - alpha * log_n, b - beta * log_d  # (n,), (n,)
    m = np.maximum(np.maximum(t1, t2), e)
    x1, x2, x3 = np.exp(t1 - m), np.exp(t2 - m), np.exp(e - m)
    total = x1 + x2 + x3
    loss, dloss = _huber(m + np.log(total) - log_l, delta)
    scale = dloss / total  # ∂huber/∂r × ∂LSE/∂term_i = dloss · x_i / Σx
    w1, w2 = x1 * scale, x2 * scale
    grad = np.array([(x3 * scale).sum(), w1.sum(), w2.sum(),
                     -(w1 @ log_n), -(w2 @ log_d)])
    return float(loss.sum()), grad, w1


def _grid_objectives(grid: np.ndarray, log_n, log_d, log_l, delta) -> np.ndarray:
    """The objective at every grid start at once: (n_starts,)."""
    e, a, b, alpha, beta = (grid[:, i:i + 1] for i in range(5))
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.broadcast_to(e, (len(grid),
                                                                               len(log_n)))])
    from scipy.special import logsumexp  # here, as scipy.optimize: only fits need scipy

    r = logsumexp(terms, axis=0) - log_l
    return _huber(r, delta)[0].sum(axis=1)


def _check_points(n, d, loss) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, d, loss = (np.asarray(x, dtype=np.float64) for x in (n, d, loss))
    if not (len(n) == len(d) == len(loss)):
        raise FitError("N, D and loss must have the same length.")
    if len(n) < 5:
        raise FitError(f"A fit of 5 parameters needs >= 5 points, but got {len(n)}.")
    if not (np.all(np.isfinite(n) & np.isfinite(d) & np.isfinite(loss))
            and np.all(n > 0) and np.all(d > 0) and np.all(loss > 0)):
        raise FitError("N, D and loss must all be finite and > 0.")
    return np.log(n), np.log(d), np.log(loss)


def _minimize_from(starts: np.ndarray, args: tuple, objective=None, bounds=None,
                   checked: int | None = None) -> tuple[np.ndarray, float, str]:
    """L-BFGS-B from each start; the best optimum and its status. ``checked``: only the
    first so many parameters make the status "hit_bound" (a caller that judges the others
    one by one, as the compression-aware law does its factors); default all."""
    from scipy.optimize import minimize  # here: importing scipy costs every command 0.2–0.5 s

    objective = objective or _objective
    bounds = bounds or _BOUNDS
    best = None
    for start in starts:
        res = minimize(objective, start, args=args, jac=True, method="L-BFGS-B",
                       bounds=bounds, options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12})
        if best is None or res.fun < best.fun:
            best = res
    at_bound = any(math.isclose(x, lo) or math.isclose(x, hi) for x, (lo, hi) in
                   list(zip(best.x, bounds))[:checked])
    # L-BFGS-B may stop in its line search at a point that is already stationary.
    stationary = best.success or np.max(np.abs(objective(best.x, *args)[1])) < 1e-7
    status = "hit_bound" if at_bound else ("converged" if stationary else "not_converged")
    return best.x, float(best.fun), status


def chinchilla_grid() -> np.ndarray:
    g = CHINCHILLA_GRID
    return np.array(list(itertools.product(g["e"], g["a"], g["b"], g["alpha"], g["beta"])))


def fit_scaling_law(n, d, loss, options: FitOptions = FitOptions()) -> ScalingLawFit:
    """Fit L(N, D) = E + A/N^α + B/D^β to points (N, D, L); see the module docstring."""
    log_n, log_d, log_l = _check_points(n, d, loss)
    args = (log_n, log_d, log_l, options.huber_delta)
    grid = chinchilla_grid()
    if options.top_k is not None:
        order = np.argsort(_grid_objectives(grid, *args))
        grid = grid[order[: options.top_k]]
    theta, objective, status = _minimize_from(grid, args)
    intervals = _bootstrap(theta, log_n, log_d, log_l, options) if options.bootstrap else {}
    e, a, b, alpha, beta = (float(x) for x in theta)
    return ScalingLawFit(math.exp(e), math.exp(a), math.exp(b), alpha, beta, objective,
                         status, len(log_n), intervals)


def _bootstrap(theta, log_n, log_d, log_l, options: FitOptions) -> dict[str, Interval]:
    """Refit on resamples (with replacement), started from the point estimate."""
    rng = np.random.default_rng(options.seed)
    draws = []
    for _ in range(options.bootstrap):
        idx = rng.integers(0, len(log_n), len(log_n))
        args = (log_n[idx], log_d[idx], log_l[idx], options.huber_delta)
        x, _, _ = _minimize_from(np.array([theta]), args)
        e, a, b, alpha, beta = x
        draws.append({"E": math.exp(e), "A": math.exp(a), "B": math.exp(b), "alpha": alpha,
                      "beta": beta, "a": beta / (alpha + beta), "b": alpha / (alpha + beta)})
    return {key: interval([row[key] for row in draws]) for key in draws[0]}


def interval(values) -> Interval:
    """The 95% percentile interval and standard error of bootstrap draws (NaN draws, of a
    parameter a resample left undetermined, are left out)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return Interval(math.nan, math.nan, math.nan)
    return Interval(float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)),
                    float(values.std(ddof=1)))


# -- L(C) = E + A·C^(−α): the loss frontier against compute alone --------------------------

_C_BOUNDS = [(-10, 10), (-20, 200), (0, 10)]  # e, a, α


@dataclass(frozen=True)
class ComputeLawFit:
    """L(C) = E + A·C^(−α), fitted to the envelope; intervals present when bootstrapped."""

    E: float
    A: float
    alpha: float
    objective: float
    status: str
    n_points: int
    intervals: dict[str, Interval] = field(default_factory=dict)
    samples: tuple[tuple[float, float, float], ...] = field(default=(), repr=False)  # (E, A, α)

    def loss(self, flops: np.ndarray | float) -> np.ndarray | float:
        return self.E + self.A * np.power(flops, -self.alpha)

    def loss_interval(self, flops: float) -> tuple[float, float] | None:
        """95% bootstrap interval of L(C), when the fit was bootstrapped."""
        if not self.samples:
            return None
        values = [e + a * flops**-alpha for e, a, alpha in self.samples]
        return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))

    def to_dict(self) -> dict[str, object]:
        out = {k: getattr(self, k) for k in ("E", "A", "alpha", "objective", "status",
                                             "n_points")}
        out["intervals"] = {k: vars(v) for k, v in self.intervals.items()}
        return out


def _compute_objective(theta, log_c, log_l, delta) -> tuple[float, np.ndarray]:
    """Summed Huber loss of LSE(a − α·log C, e) − log L, and its gradient."""
    e, a, alpha = theta
    t1 = a - alpha * log_c
    m = np.maximum(t1, e)
    x1, x2 = np.exp(t1 - m), np.exp(e - m)
    loss, dloss = _huber(m + np.log(x1 + x2) - log_l, delta)
    scale = dloss / (x1 + x2)
    w1 = x1 * scale
    return float(loss.sum()), np.array([(x2 * scale).sum(), w1.sum(), -(w1 @ log_c)])


def fit_compute_law(flops, loss, options: FitOptions = FitOptions()) -> ComputeLawFit:
    """Fit L(C) = E + A·C^(−α) (log-space, Huber, L-BFGS-B from a grid), e.g. to the envelope."""
    flops, loss = np.asarray(flops, dtype=np.float64), np.asarray(loss, dtype=np.float64)
    if len(flops) < 3:
        raise FitError(f"A fit of 3 parameters needs >= 3 points, but got {len(flops)}.")
    if not (np.all(np.isfinite(flops) & np.isfinite(loss)) and np.all(flops > 0)
            and np.all(loss > 0)):
        raise FitError("Compute and loss must all be finite and > 0.")
    log_c, log_l = np.log(flops), np.log(loss)
    e0 = np.log(loss.min()) + np.array([-1.0, -0.3, -0.1, -0.02])
    starts = np.array([(e, a, al) for e in e0 for al in (0.05, 0.1, 0.2, 0.4, 0.8)
                       for a in (al * np.median(log_c) + np.log(max(loss.max() - loss.min(),
                                                                     1e-3)),)])
    args = (log_c, log_l, options.huber_delta)
    theta, objective, status = _minimize_from(starts, args, _compute_objective, _C_BOUNDS)
    intervals, samples = {}, ()
    if options.bootstrap:
        rng = np.random.default_rng(options.seed)
        draws = []
        for _ in range(options.bootstrap):
            idx = rng.integers(0, len(log_c), len(log_c))
            x, _, _ = _minimize_from(np.array([theta]), (log_c[idx], log_l[idx],
                                     options.huber_delta), _compute_objective, _C_BOUNDS)
            draws.append(x)
        draws = np.array(draws)
        samples = tuple((float(np.exp(e)), float(np.exp(a)), float(al)) for e, a, al in draws)
        for i, key in enumerate(("E", "A", "alpha")):
            v = np.exp(draws[:, i]) if key != "alpha" else draws[:, i]
            intervals[key] = Interval(float(np.percentile(v, 2.5)),
                                      float(np.percentile(v, 97.5)), float(v.std(ddof=1)))
    e, a, alpha = (float(x) for x in theta)
    return ComputeLawFit(math.exp(e), math.exp(a), alpha, objective, status, len(log_c),
                         intervals, samples)
