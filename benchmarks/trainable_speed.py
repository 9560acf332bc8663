"""Trainable speed: model FLOPs utilization (MFU) of the training step on one thread.

MFU = counted training FLOPs per second / FLOP/s of a 1024×1024 fp32 matmul measured in the
same process, so the ratio is about our code, not about the machine. The matmul is measured
just before and just after each width's steps and the faster taken: this machine is a VM whose
speed drifts by 10–25% over minutes, and one measurement at the start moved MFU as much.
Prints one JSON object.

    .venv/bin/python benchmarks/trainable_speed.py [--model gpt2] [--widths 64 128 256]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from budgetune.spaces import Schedule
from budgetune.trainables import Trial, TrialConfig


def matmul_flops_per_s(n: int = 1024, seconds: float = 2.0) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm up
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - t0)


def step_seconds(schedule: Schedule, warmup: int, steps: int) -> tuple[float, float]:
    """(median seconds per training step, FLOPs per step)."""
    trial = Trial(schedule, 1e18, TrialConfig(eval_tokens=schedule.seq_len, n_reports=1))
    times = []
    for k in range(warmup + steps):
        t0 = time.perf_counter()
        trial._train_step()
        if k >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2], trial.flops_per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt2")
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for d in args.widths:
        s = Schedule(model=args.model, d_model=d, n_layers=4, n_heads=max(1, d // 32),
                     seq_len=128, batch_size=32, vocab_size=4096)
        before = matmul_flops_per_s()
        seconds, flops = step_seconds(s, warmup=3, steps=args.steps)
        peak = max(before, matmul_flops_per_s())
        rate = flops / seconds
        rows.append({"d_model": d, "step_s": round(seconds, 4), "flops_per_step": flops,
                     "flops_per_s": round(rate), "matmul_1024_flops_per_s": round(peak),
                     "mfu": round(rate / peak, 3)})
    print(json.dumps({"benchmark": "trainable_speed", "model": args.model,
                      "threads": args.threads, "rows": rows}))


if __name__ == "__main__":
    main()
