"""Latency of `budgetune serve`'s /api/best on a large table, first answer and cached ones.

Writes a synthetic search of ``--trials`` trials (5 budgets, 4 reports each, a 6-cell
compression grid per completed trial; losses from a Chinchilla-like law with noise) through
``budgetune.results.ResultsWriter``, starts a real ``budgetune serve`` process over it, and times
GET /api/best: the first request (load, fit, query), then ``--repeats`` more (the cache, keyed by
the tables' version), and /api/status likewise. Prints one JSON object.

    .venv/bin/python benchmarks/service_latency.py [--trials 1000] [--repeats 50]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from budgetune.results import SCHEMA_VERSION, ResultsWriter
from budgetune.spaces import Schedule

BUDGETS = (1e15, 3e15, 1e16, 3e16, 1e17)  # FLOPs
LAW = {"E": 1.7, "A": 400.0, "B": 1500.0, "alpha": 0.34, "beta": 0.28}
GRID = [(s, b) for s in (0.0, 0.5, 0.75) for b in (8, 4)]  # sparsity × bits


def _loss(n: float, d: float, rng) -> float:
    clean = LAW["E"] + LAW["A"] / n ** LAW["alpha"] + LAW["B"] / d ** LAW["beta"]
    return float(clean * np.exp(rng.normal(0, 0.005)))


def _trial(i: int, budget: float, rng) -> tuple[list[dict], dict, list[dict]]:
    d_model = int(rng.choice([64, 128, 256, 512]))
    n_layers = int(rng.choice([2, 4, 8]))
    schedule = Schedule(d_model=d_model, n_layers=n_layers, n_heads=4,
                        share_fraction=float(rng.choice([0.0, 0.1, 0.3])),
                        lr=float(rng.choice([1e-3, 3e-3])))
    n = 12 * d_model**2 * n_layers
    done = rng.random() < 0.7
    exp = f"budget-{budget:.0e}"
    base = {"search_id": "bench", "experiment": exp, "trial_id": f"t{i:05d}",
            "budget_flops": budget, "corpus_id": "c0", "schema_version": SCHEMA_VERSION,
            "budgetune_version": "bench", **schedule.to_dict()}
    steps = (1, 2, 3, 4) if done else (1, 2)
    reports = []
    for step in steps:
        frac = step / 4
        loss = _loss(n, budget * frac / (6 * n), rng)
        reports.append({**base, "point": done and step == 4, "step": step,
                        "tokens": int(budget * frac / (6 * n)), "epochs": frac,
                        "train_flops": budget * frac, "spent_flops": budget * frac,
                        "eval_flops": 1e9, "eval_tokens": 8192, "wall_s": float(step),
                        "train_s": float(step), "current_lr": 1e-3, "train_loss": loss,
                        "n_params": int(n * 1.3), "n_params_nonemb": n, "shared": False,
                        "val_loss": loss, "val_loss_se": 0.01, "unigram_loss": 7.0,
                        "val_loss_compressed": loss, "val_loss_diff_se": 0.0,
                        "compressed_bytes": int(4 * n * 1.3),
                        "sparsity": 0.0, "feasible": True, "completed": done and step == 4,
                        "share_fraction_effective": 0.0, "main_line_flops": budget})
    trial = {**base, "status": "done" if done else "stopped",
             "stop_reason": "budget" if done else "asha", "last_step": steps[-1],
             "train_flops": budget * steps[-1] / 4, "spent_flops": budget * steps[-1] / 4,
             "val_loss_compressed": reports[-1]["val_loss_compressed"], "node": "n0"}
    grid = [{k: base[k] for k in ("search_id", "experiment", "trial_id", "budget_flops",
                                  "corpus_id", "schema_version", "budgetune_version")}
            | {"sparsity": s, "quant_bits": b, "one_shot": s > 0,
               "val_loss_compressed": reports[-1]["val_loss"] * (1 + s**3 / 10 + (b == 4) / 200),
               "val_loss_diff_se": 0.0 if (s, b) == (0.0, 32) else 0.002,
               "compressed_bytes": int(n * (1 - s) * b / 8 * 1.3)}
            for s, b in GRID] if done else []
    return reports, trial, grid


def write_table(root: Path, trials: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    rows = {"reports": [], "trials": [], "grid": []}
    for i in range(trials):
        r, t, g = _trial(i, BUDGETS[i % len(BUDGETS)], rng)
        rows["reports"] += r
        rows["trials"].append(t)
        rows["grid"] += g
    with ResultsWriter(root, "bench") as w:
        for table, table_rows in rows.items():
            for k in range(0, len(table_rows), 1000):  # several part files, as a search flushes
                w.append(table, table_rows[k:k + 1000])


def _get(port: int, path: str) -> tuple[int, float]:
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    conn.request("GET", path)
    status = conn.getresponse()
    status.read()
    conn.close()
    return status.status, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        write_table(root, args.trials)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        server = subprocess.Popen([sys.executable, "-m", "budgetune.cli", "serve", "--results",
                                   str(root), "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL)
        try:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            out = {"trials": args.trials, "part_files": sum(
                1 for _ in root.glob("bench/*/part-*.parquet"))}
            for name, path in [("best", "/api/best?budget=1e17&max_mb=2"),
                               ("status", "/api/status")]:
                status, first = _get(port, path)
                assert status == 200, (path, status)
                again = [_get(port, path)[1] for _ in range(args.repeats)]
                out[name] = {"first_s": round(first, 3),
                             "cached_median_ms": round(1e3 * statistics.median(again), 2),
                             "cached_max_ms": round(1e3 * max(again), 2)}
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
