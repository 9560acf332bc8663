"""What the compression-aware law adds to ``best``: its factors, and, for a budget beyond the
data under a size limit, its prediction for the best compression cell.

Within the measured budgets the measured recipes answer (``pick``); the law is quoted beside
them as its factors e_c with their bootstrap intervals and what they rest on. Beyond the
largest measured budget, under a size limit M, no measured recipe can answer: for every cell c
whose factor is quoted, ``_allocate.allocate_within`` finds the N (along the winner's shape
family, D from the trainer's FLOPs) that minimises L(N, D, c) among models whose size at c fits
M, and the cell of lowest expected loss is the prediction, marked extrapolated with the factor
budget / largest measured budget. Compression is what lets a larger N fit under M; the law says
what it costs in effective size.
"""

from __future__ import annotations

from dataclasses import dataclass

from budgetune.analysis._allocate import allocate_within
from budgetune.analysis._compression_law import BASE_CELL, CompressionLaw, factor_entry


@dataclass(frozen=True)
class CompressedPrediction:
    """The law's best (schedule, cell) for a budget beyond the data, under the size limit."""

    sparsity: float  # train to this sparsity (gradual pruning) ...
    quant_bits: int  # ... then quantize to these bits
    e: float  # the cell's effective-size factor
    e_interval: tuple[float, float] | None  # its 95% bootstrap interval (None: reference)
    n_params_nonemb: int  # N of the predicted shape (dense count)
    tokens: int  # D: the trainer's planned steps × tokens per step
    train_flops: float  # <= the budget, < one step short
    shape: dict[str, int]  # d_model, n_layers, n_heads, d_ff (the winner's family)
    compressed_bytes: int  # its size at the cell (budgetune.sizes)
    expected_loss: float  # L(N, D, cell)  # nats
    extrapolated: bool
    factor: float  # budget / largest measured budget


@dataclass(frozen=True)
class CompressionAnswer:
    """``best``'s compression-aware part (``best --json``'s ``compression_law``)."""

    factors: list[dict] | None  # per cell: quant_bits, sparsity, e, interval, n_models, ...
    alpha: float | None  # the law's exponents, shared by every cell
    beta: float | None
    alpha_interval: tuple[float, float] | None  # 95% bootstrap intervals
    beta_interval: tuple[float, float] | None
    n_models: int  # budget points fitted
    n_budgets: int
    n_cells: int
    reason: str | None  # why the law is not quoted; None when it is
    notes: list[str]  # what was left out of the fit
    prediction: CompressedPrediction | None
    prediction_reason: str | None  # why there is no prediction; None when there is one


def compression_answer(law: CompressionLaw, budget_flops: float, factor: float,
                       max_bytes: float | None, winner: dict) -> CompressionAnswer:
    """The law's part of the answer for ``budget_flops`` (``factor`` = budget / largest
    measured budget) under ``max_bytes``, along ``winner``'s shape family."""
    fit = law.fit
    if fit is None or law.reason is not None:
        return CompressionAnswer(None, None, None, None, None,
                                 0 if fit is None else fit.n_models,
                                 0 if fit is None else len(fit.budgets),
                                 0 if fit is None else len(fit.factors),
                                 law.reason or "no fit", list(law.notes), None,
                                 law.reason or "no fit")
    prediction, why = None, None
    if factor <= 1:
        why = "within the measured budgets: the measured recipes answer"
    elif max_bytes is None:
        why = "no size limit: the L(N, D) law's allocation answers"
    else:
        prediction, why = _predict(law, budget_flops, factor, max_bytes, winner)
    ivs = {k: (fit.intervals[k].low, fit.intervals[k].high) if k in fit.intervals else None
           for k in ("alpha", "beta")}
    return CompressionAnswer([factor_entry(fit, c) for c in fit.factors], fit.alpha, fit.beta,
                             ivs["alpha"], ivs["beta"], fit.n_models, len(fit.budgets),
                             len(fit.factors), None, list(law.notes), prediction, why)


def _predict(law: CompressionLaw, budget: float, factor: float, max_bytes: float,
             winner: dict) -> tuple[CompressedPrediction | None, str | None]:
    fit, best, failures = law.fit, None, []
    for cell in law.quoted_cells():
        try:
            a = allocate_within(lambda n, d, c=cell: fit.loss(n, d, c), budget, winner, cell,
                                max_bytes)
        except ValueError as e:
            failures.append(str(e))
            continue
        if best is None or a.expected_loss < best[1].expected_loss:
            best = (cell, a)
    if best is None:
        return None, "no prediction: " + ("; ".join(failures) or "no factor is quoted")
    cell, a = best
    iv = fit.factor_intervals.get(cell)
    s = a.schedule
    return CompressedPrediction(
        cell[1], cell[0], fit.factors[cell],
        None if cell == BASE_CELL or iv is None else (iv.low, iv.high), a.n_params_nonemb,
        a.tokens, a.train_flops,
        {"d_model": s.d_model, "n_layers": s.n_layers, "n_heads": s.n_heads, "d_ff": s.d_ff},
        a.compressed_bytes, a.expected_loss, True, factor), None


def factors_text(factors: list[dict]) -> list[str]:
    """One line per cell of ``CompressionAnswer.factors`` (``best``'s text and the report):
    "4 bits, sparsity 0: e = 0.921, 95% [0.907, 0.938] (35 models)"."""
    lines = []
    for f in factors:
        head = f"{f['quant_bits']} bits, sparsity {f['sparsity']:g}: e = "
        models = f"{f['n_models']} model{'s' * (f['n_models'] != 1)}"
        if f["reference"]:
            lines.append(f"{head}1 (the reference: uncompressed; {models})")
        else:
            iv = f["interval"]
            band = (f", 95% [{iv[0]:.3f}, {iv[1]:.3f}]" if iv and all(x == x for x in iv)
                    else "")
            lines.append(f"{head}{f['e']:.3f}{band} ({models})")
    return lines
