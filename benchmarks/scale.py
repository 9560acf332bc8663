"""Scale: how the search's own machinery costs as a search grows to a thousand trials.

Searches of 10, 100 and 1,000 trials of the ``tiny`` preset (a fraction of a second of
training each, so the machinery is what is measured) on a local Ray instance with the
machine's CPUs, one trial per CPU, TPE proposing and ASHA stopping, as ``budgetune search``
runs them. Each search runs in a fresh driver process (``--one N``), which measures itself:

- ``driver_ms_per_trial``: the driver's CPU time (every thread of the process: Tune's loop,
  the searcher, our callbacks, Ray's client) between the first and the last trial's end,
  divided by the trials that ended in between. Start-up (Ray, the first actor) and the end
  (plots, the summary) are outside it, so the figure is the marginal cost of one more trial.
- ``gap_s``: per trial, the wall time from the latest trial end before its first step to
  that first step (the slot handed over: Tune's scheduling, the actor's reset, building the
  trial). Its first step is its first report's arrival at the driver minus the in-trial
  ``wall_s`` of that report. Median and 90th percentile; the first wave of trials is left out.
- Tune's experiment state: the newest ``experiment_state-*.json``'s size, how many times Tune
  saved it and the mean time of a save (``TuneController.save_to_dir``, timed by wrapping it
  here; it includes our callback's flush of the results tables, timed alone as ``flush_s``).
- The results tables: part files, bytes, and the time to read them back
  (``budgetune.analysis.load_results``, best of 3, in this process).
- ``budgetune status`` and ``budgetune best`` as a user runs them: the wall time of the
  command in a new process (Python's start-up and imports included), best of 3.
- ``driver_peak_mb``: the driver's peak resident memory.

The parent writes every search's figures to ``--out`` (JSON) and draws them against the
number of trials (``--plot``; a second JSON given by ``--before`` is drawn beside, dashed).

    .venv/bin/python benchmarks/scale.py [--trials 10 100 1000] [--budget 2e8]
        [--eval-tokens 1024] [--out benchmarks/figures/scale.json] [--before OLD.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "budgetune.cli"]


def _best_wall(command: list[str], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def _best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _instrument() -> dict[str, list[float]]:
    """Time Tune's experiment-state saves and our flushes (wrapping, not changing, them)."""
    from ray.tune.execution.tune_controller import TuneController

    from budgetune.search._callback import ResultsCallback

    timings: dict[str, list[float]] = {"save": [], "flush": []}
    for cls, method, key in ((TuneController, "save_to_dir", "save"),
                             (ResultsCallback, "flush", "flush")):
        original = getattr(cls, method)

        def timed(self, *a, _original=original, _key=key, **k):
            t0 = time.perf_counter()
            try:
                return _original(self, *a, **k)
            finally:
                timings[_key].append(time.perf_counter() - t0)

        setattr(cls, method, timed)
    return timings


def one_search(n_trials: int, budget: float, eval_tokens: int, root: str) -> dict:
    """Run one search of ``n_trials`` in this process and measure it (see the module doc)."""
    from budgetune.search import SearchSpec, run_search
    from budgetune.search._ray import secure_environment

    secure_environment(local=True)
    timings = _instrument()
    from budgetune.analysis import load_results
    from budgetune.results import TABLES, part_files, read_table

    first_report: dict[str, float] = {}  # trial -> driver time of its first report
    ends: list[tuple[float, float]] = []  # (wall, driver CPU) at each trial's end

    def progress(line: str) -> None:
        now = time.perf_counter()
        words = line.split()
        if len(words) < 2 or not words[1].endswith(":"):
            return
        trial = words[1][:-1]
        if "step" in words:
            first_report.setdefault(trial, now)
        elif "finished its budget" in line or "stopped early" in line:
            ends.append((now, time.process_time()))

    spec = SearchSpec(space="tiny", budgets=(budget,), num_samples=n_trials, max_mb=None,
                      eval_tokens=eval_tokens, repeats=0, results=root, name="scale")
    t0 = time.perf_counter()
    run_search(spec, progress=progress)
    wall = time.perf_counter() - t0
    folder = spec.folder()
    reports = read_table(folder, "reports")
    first = reports.sort_values("step").groupby("trial_id").head(1).set_index("trial_id")
    starts = sorted(first_report[t] - float(first.loc[t, "wall_s"])
                    for t in first.index if t in first_report)
    end_times = sorted(e for e, _ in ends)
    slots = spec.max_concurrent or os.cpu_count()
    gaps = []
    for start in starts[slots:]:  # the first wave starts with the search, not after a trial
        before = [e for e in end_times if e <= start]
        if before:
            gaps.append(start - before[-1])
    (e0, c0), (e1, c1) = ends[0], ends[-1]
    states = sorted((folder / "tune").rglob("experiment_state-*.json"))
    parts = {t: len(part_files(folder, t)) for t in TABLES}
    table_bytes = sum(p.stat().st_size for t in TABLES for p in part_files(folder, t))
    name_args = ["--results", root, "--name", "scale"]
    trials = read_table(folder, "trials")
    return {
        "trials": int(trials.shape[0]),
        # that the trials trained: done or stopped by ASHA, none failed
        "statuses": {str(k): int(v) for k, v in trials["status"].value_counts().items()},
        "reports": int(reports.shape[0]),
        "wall_s": round(wall, 1),
        "driver_ms_per_trial": round(1000 * (c1 - c0) / max(1, len(ends) - 1), 1),
        "trials_per_minute": round(60 * (len(ends) - 1) / max(e1 - e0, 1e-9), 1),
        "gap_s_median": round(statistics.median(gaps), 3) if gaps else None,
        "gap_s_p90": round(sorted(gaps)[int(0.9 * (len(gaps) - 1))], 3) if gaps else None,
        "tune_state_kb": round(states[-1].stat().st_size / 1e3, 1) if states else None,
        "tune_saves": len(timings["save"]),
        "tune_save_ms_mean": round(1000 * statistics.mean(timings["save"]), 1),
        "tune_save_ms_last": round(1000 * timings["save"][-1], 1),
        "flush_ms_mean": round(1000 * statistics.mean(timings["flush"]), 1),
        "parts": parts,
        "tables_mb": round(table_bytes / 1e6, 3),
        "read_s": round(_best_of(lambda: load_results(root)), 3),
        "status_s": round(_best_wall([*CLI, "status", *name_args]), 2),
        "best_s": round(_best_wall([*CLI, "best", "--budget", f"{budget:g}",
                                    "--no-size-limit", *name_args]), 2),
        "driver_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3, 1),
    }


def plot(runs: list[dict], before: list[dict] | None, path: Path) -> None:
    """Every figure against the number of trials; ``before`` (an earlier run) dashed."""
    from matplotlib.figure import Figure

    panels = [("driver_ms_per_trial", "driver CPU per trial (ms)", 50.0),
              ("gap_s_median", "trial hand-over gap, median (s)", None),
              ("driver_peak_mb", "driver peak memory (MB)", None),
              ("tune_saves", "Tune state saves", None),
              ("save_ms_per_trial", "time in Tune state saves per trial (ms)", None),
              ("tune_state_kb", "Tune state file (kB)", None),
              ("report_parts", "reports table: part files", None),
              ("read_s", "reading the tables (s)", 1.0),
              ("status_s", "`budgetune status`, `best` dotted (s)", 1.0)]
    for run in (before or []) + runs:
        run["save_ms_per_trial"] = run["tune_saves"] * run["tune_save_ms_mean"] / run["trials"]
        run["report_parts"] = run["parts"]["reports"]
    fig = Figure(figsize=(12, 9), layout="constrained")
    for ax, (key, title, goal) in zip(fig.subplots(3, 3).flat, panels, strict=True):
        for data, style, label in ((before, "--o", "before"), (runs, "-o", "after")):
            if data:
                line, = ax.plot([r["trials"] for r in data], [r[key] for r in data], style,
                                label=label)
                if key == "status_s":
                    ax.plot([r["trials"] for r in data], [r["best_s"] for r in data], ":",
                            color=line.get_color())
        if goal is not None:
            ax.axhline(goal, color="grey", lw=0.8, ls=":", label="goal")
        ax.set_xscale("log")
        if key in ("tune_saves", "report_parts", "tune_state_kb", "read_s", "status_s"):
            ax.set_yscale("log")
        ax.set_xlabel("trials in the search")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle("budgetune at scale: tiny trials on local Ray, "
                 f"{runs[0]['cpus']} CPUs (measured, one search per point)", fontsize=11)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--budget", type=float, default=2e8)
    parser.add_argument("--eval-tokens", type=int, default=1024)
    parser.add_argument("--out", default=str(HERE / "figures" / "scale.json"))
    parser.add_argument("--before", default=None, help="an earlier --out, drawn dashed")
    parser.add_argument("--plot-only", action="store_true",
                        help="redraw the plot of --out (and --before) without searching")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--root", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:  # the child: one search, one JSON line last
        result = one_search(args.one, args.budget, args.eval_tokens, args.root)
        print("\nSCALE " + json.dumps(result), flush=True)
        return
    if args.plot_only:
        before = json.loads(Path(args.before).read_text()) if args.before else None
        plot(json.loads(Path(args.out).read_text()), before, Path(args.out).with_suffix(".png"))
        return
    runs = []
    for n in args.trials:
        with tempfile.TemporaryDirectory() as root:
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(n), "--root", root, "--budget",
                 str(args.budget), "--eval-tokens", str(args.eval_tokens)],
                capture_output=True, text=True)
        lines = [x for x in out.stdout.splitlines() if x.startswith("SCALE ")]
        if out.returncode != 0 or not lines:
            sys.exit(f"the {n}-trial search failed:\n{out.stderr[-3000:]}")
        run = {"cpus": os.cpu_count(), "budget": args.budget, "eval_tokens": args.eval_tokens,
               **json.loads(lines[-1][len("SCALE "):])}
        print(json.dumps(run), flush=True)
        runs.append(run)
    Path(args.out).write_text(json.dumps(runs, indent=1) + "\n")
    before = json.loads(Path(args.before).read_text()) if args.before else None
    plot(runs, before, Path(args.out).with_suffix(".png"))


if __name__ == "__main__":
    main()
