"""What ``budgetune status`` shows: a running or finished search, read from its tables alone.

Trial counts and FLOPs come from the ``trials`` table; "best so far" is the one definition
(``_candidates.pick``) at each of the search's budgets, under the search's own size limit
(``max_mb`` in its ``search.json``), exactly as ``best``, ``report`` and the search's summary
answer it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from budgetune.analysis._candidates import pick, rank_recipes
from budgetune.analysis._load import Results
from budgetune.analysis._query import describe_limit
from budgetune.results import (
    MODELS_DIR,
    TABLES,
    ResultsError,
    disk_bytes,
    read_search_spec,
    read_table,
    search_folders,
)


@dataclass(frozen=True)
class ExperimentStatus:
    experiment: str
    budget_flops: float
    counts: dict[str, int]  # trials per status: running, done, stopped, error
    stop_reasons: dict[str, int]
    train_flops: float  # spent so far, cooldown branches included (spent_flops)
    # (budget, trials with a budget point there), ascending: under WSD one experiment has
    # points at every budget; a cosine experiment, at its own
    points: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True)
class BudgetBest:
    """The pick at one budget (``_candidates.pick``), or why there is none yet."""

    budget_flops: float
    model: str | None
    trial_id: str | None
    d_model: int | None
    n_layers: int | None
    sparsity: float | None
    quant_bits: int | None
    compressed_bytes: int | None
    loss_mean: float | None  # val_loss_compressed, mean over seeds  # nats
    loss_low: float | None  # 95% interval
    loss_high: float | None
    basis: str | None  # "single seed" or "mean of k seeds"
    smaller_preferred: bool  # a smaller recipe within noise of the lowest was chosen
    reason: str | None  # why there is no pick (None when there is)


@dataclass(frozen=True)
class SearchStatus:
    name: str
    folder: Path
    spec: dict | None
    max_bytes: float | None  # the size limit "best" is judged under
    size_limit: str  # that limit in words, with where it came from
    experiments: list[ExperimentStatus]
    best: list[BudgetBest]
    # bytes on disk: "total", and of it "models" (kept models), "tune" (Tune's checkpoints
    # and experiment state) and "tables"; "kept_models" counts the kept models' files
    disk: dict[str, int]

    @property
    def train_flops(self) -> float:
        return sum(e.train_flops for e in self.experiments)


SEARCH_LIMIT = "the search's --max-mb"
NO_SEARCH_LIMIT = "the search had no --max-mb"
NO_SPEC = "no search.json saved a --max-mb"


def saved_size_limit(root: str | Path, name: str | None = None) -> tuple[float | None, str]:
    """(max_bytes, where it came from): the searches' saved ``--max-mb``, the default limit
    of every query about them. Searches saved with different limits need a choice."""
    folders = [f for f in search_folders(root) if name is None or f.name == name]
    specs = [s for s in (read_search_spec(f) for f in folders) if s is not None]
    limits = sorted({s.get("max_mb") for s in specs}, key=lambda x: (x is not None, x or 0))
    if not limits:
        return None, NO_SPEC
    if len(limits) > 1:
        shown = ["none" if x is None else f"{x:g} MB" for x in limits]
        raise ValueError(f"The searches under {str(root)!r} were run with different size "
                         f"limits {shown}; pass --name, --max-mb or --no-size-limit.")
    if limits[0] is None:
        return None, NO_SEARCH_LIMIT
    return float(limits[0]) * 1e6, SEARCH_LIMIT


def _point_counts(reports) -> dict[str, tuple[tuple[float, int], ...]]:
    """experiment -> (budget, trials with a budget point there), ascending."""
    points = reports[reports["point"].astype(bool)]
    counts = points.groupby(["experiment", "budget_flops"])["trial_id"].nunique()
    out: dict[str, list[tuple[float, int]]] = {}
    for (experiment, budget), n in counts.items():
        out.setdefault(experiment, []).append((float(budget), int(n)))
    return {e: tuple(v) for e, v in out.items()}


def _experiment_status(name: str, trials, points: tuple[tuple[float, int], ...]
                       ) -> ExperimentStatus:
    mine = trials[trials["experiment"] == name]
    spent = mine["spent_flops"].fillna(mine["train_flops"])
    return ExperimentStatus(
        name, float(mine["budget_flops"].iloc[0]) if len(mine) else math.nan,
        mine["status"].value_counts().to_dict(),
        mine["stop_reason"].dropna().value_counts().to_dict(), float(spent.sum()), points)


def _none(budget: float, model: str | None, reason: str) -> BudgetBest:
    return BudgetBest(budget, model, *([None] * 10), False, reason)


def budget_best(results: Results, budgets, max_bytes: float | None) -> list[BudgetBest]:
    """The pick at each budget, per model family (their losses are not comparable)."""
    out = []
    models = results.models if len(results.reports) else [None]
    for model in models:
        ranked = rank_recipes(results.for_model(model)) if model else None
        for b in budgets:
            if ranked is None or ranked.empty:
                out.append(_none(b, model, "no budget point yet"))
                continue
            try:
                p = pick(ranked, b, max_bytes)
            except ResultsError as e:
                out.append(_none(b, model, str(e)))
                continue
            w = p.winner
            out.append(BudgetBest(b, model, str(w["trial_id"]), int(w["d_model"]),
                                  int(w["n_layers"]), float(w["sparsity"]),
                                  int(w["quant_bits"]), int(w["compressed_bytes"]),
                                  float(w["loss_mean"]), float(w["loss_low"]),
                                  float(w["loss_high"]), p.basis, p.smaller_preferred, None))
    return out


def search_status(root: str | Path, name: str | None = None) -> list[SearchStatus]:
    out = []
    for folder in search_folders(root):
        if name is not None and folder.name != name:
            continue
        spec = read_search_spec(folder)
        trials = read_table(folder, "trials")
        results = Results(read_table(folder, "reports"), trials, read_table(folder, "grid"))
        # by budget, then the search's own experiment before its repeats, then by name
        names = sorted(set(trials["experiment"]), key=lambda e: (trials.loc[
            trials["experiment"] == e, "budget_flops"].iloc[0], e.startswith("repeats"), e))
        points = _point_counts(results.reports)
        max_mb = (spec or {}).get("max_mb")
        max_bytes = None if max_mb is None else float(max_mb) * 1e6
        source = SEARCH_LIMIT if max_mb is not None else NO_SEARCH_LIMIT if spec else NO_SPEC
        budgets = sorted((spec or {}).get("budgets") or set(results.reports.loc[
            results.reports["point"].astype(bool), "budget_flops"]))
        out.append(SearchStatus(folder.name, folder, spec, max_bytes,
                                describe_limit(max_bytes, source),
                                [_experiment_status(e, trials, points.get(e, ()))
                                 for e in names],
                                budget_best(results, budgets, max_bytes), disk_use(folder)))
    return out


def disk_use(folder: Path) -> dict[str, int]:
    """What a search's folder holds on disk (``SearchStatus.disk``)."""
    models = folder / MODELS_DIR
    return {"total": disk_bytes(folder), "models": disk_bytes(models),
            "kept_models": sum(1 for _ in models.rglob("*.safetensors")),
            "tune": disk_bytes(folder / "tune"),
            "tables": sum(disk_bytes(folder / t) for t in TABLES)}


def format_best_line(b: BudgetBest) -> str:
    """One budget's pick, as ``status`` and the search's summary print it."""
    if b.reason is not None:
        return f"  {b.budget_flops:>9.3g}  none: {b.reason}"
    mark = " (smallest within noise)" if b.smaller_preferred else ""
    interval = (f"[{b.loss_low:.4f}, {b.loss_high:.4f}]" if math.isfinite(b.loss_low)
                else f"{'no interval':>16}")
    return (f"  {b.budget_flops:>9.3g} {b.d_model:>7} {b.n_layers:>8} {b.sparsity:>8.2f} "
            f"{b.quant_bits:>4} {b.loss_mean:>8.4f} {interval} "
            f"{b.compressed_bytes / 1e6:>6.2f}  {b.basis}{mark}  {b.trial_id}")


BEST_HEADER = (f"  {'budget':>9} {'d_model':>7} {'n_layers':>8} {'sparsity':>8} {'bits':>4} "
               f"{'loss':>8} {'95% interval':>18} {'MB':>6}  basis  trial")


def format_status(statuses: list[SearchStatus]) -> str:
    lines = []
    for st in statuses:
        cap = (st.spec or {}).get("max_total_flops")
        spent = f"{st.train_flops:.3g} training FLOPs" + (f" of a {cap:.3g} cap" if cap else "")
        lines.append(f"search {st.name!r} ({st.folder}): {spent}")
        lines.append(f"  {'experiment':<18} {'running':>7} {'done':>5} {'stopped':>7} "
                     f"{'error':>5} {'FLOPs':>9}")
        for e in st.experiments:
            c = e.counts
            lines.append(f"  {e.experiment:<18} {c.get('running', 0):>7} {c.get('done', 0):>5} "
                         f"{c.get('stopped', 0):>7} {c.get('error', 0):>5} "
                         f"{e.train_flops:>9.3g}")
            if any(b != e.budget_flops for b, _ in e.points):  # WSD: points at every budget
                lines.append("    budget points: " + ", ".join(
                    f"{b:.3g} ×{n}" for b, n in e.points))
        d = st.disk
        lines.append(f"  disk: {d['total'] / 1e6:.3g} MB: kept models {d['models'] / 1e6:.3g} MB "
                     f"({d['kept_models']} files), Tune's checkpoints and state "
                     f"{d['tune'] / 1e6:.3g} MB, tables {d['tables'] / 1e6:.3g} MB")
        lines.append(f"best so far per budget (budget points, val_loss_compressed; size limit "
                     f"{st.size_limit}):")
        lines.append(BEST_HEADER)
        lines += [format_best_line(b) for b in st.best]
    return "\n".join(lines) if lines else "no searches found"
