"""The ``budgetune`` command. Each subcommand is a thin call into one part of the package.

Errors in the user's input (``ValueError``) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

# The command may set what a library must not (STYLE.md): numpy's BLAS on one thread. The fits
# are tiny; on a machine busy training, OpenBLAS's threads fought for the cores and one
# `best` took 29.5 s instead of 1.2 s. Before numpy is first imported, below.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from budgetune import __version__  # noqa: E402
from budgetune._cli_analysis import add_analysis_commands  # noqa: E402
from budgetune._cli_export import add_export_command  # noqa: E402
from budgetune._cli_search import add_search_commands  # noqa: E402
from budgetune.service import add_serve_command  # noqa: E402
from budgetune.spaces import Schedule, schedule_fields, validate_budget  # noqa: E402

DEFAULT_TRAIN_BUDGET = 5e12  # FLOPs: about two minutes on 2 CPU cores at the default schedule


def _error_line(message: object) -> str:
    """One line whatever the message quotes: a user's text may hold line breaks."""
    return "budgetune: error: " + str(message).replace("\r", "\\r").replace("\n", "\\n") + "\n"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, status 2
        self.exit(2, _error_line(message))


def _add_schedule_flags(parser: argparse.ArgumentParser) -> None:
    defaults = Schedule()
    group = parser.add_argument_group("schedule (fields of budgetune.spaces.Schedule)")
    for field in schedule_fields():
        flag = "--" + field.name.replace("_", "-")
        kind = {"int": int, "float": float, "str": str}[str(field.type)]
        derived = {"d_ff": " (4·d_model)", "lr": " (the family's default: 3e-3 gpt2, 1e-3 bert)"}
        default = 0 if field.name in derived else getattr(defaults, field.name)
        helptext = f"default {default}" + derived.get(field.name, "")
        group.add_argument(flag, dest=field.name, type=kind, default=default, help=helptext)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train one schedule for a FLOPs budget (no Ray)",
                       description="Train one schedule for a FLOPs budget, without Ray, and "
                       "print its reports.")
    p.add_argument("--schedule", default=None, metavar="FILE",
                   help="an export's schedule.yaml: its schedule, budget, main line, "
                   "evaluation tokens, corpus and threads, so the run repeats the search's "
                   "budget point to the same loss (flags given as well override the file's "
                   "budget, main line, evaluation tokens and threads; schedule flags are "
                   "refused)")
    _add_schedule_flags(p)
    p.add_argument("--budget", type=float, default=None,
                   help=f"training FLOPs (default {DEFAULT_TRAIN_BUDGET:.0e}, or the "
                   "--schedule file's)")
    p.add_argument("--corpus", default=None,
                   help="'builtin' (the Python standard library's source), 'python' (every "
                   "installed Python source file, ~20x builtin, tokenized once into the cache), "
                   "a folder holding train.bin, val.bin (uint16, or uint32 with meta.json "
                   "{\"dtype\": \"uint32\"}) and tokenizer.json, a .txt/.jsonl/.parquet file "
                   "or folder of them, or hf:NAME (default builtin)")
    p.add_argument("--main-line", type=float, default=None, metavar="FLOPS",
                   help="wsd: the budget the main line is planned for (it places the switch "
                   "from shared blocks), so this run is the budget point of a search whose "
                   "largest budget that was (default: --budget)")
    p.add_argument("--n-reports", type=int, default=10, help="evenly spaced reports")
    p.add_argument("--eval-tokens", type=int, default=None,
                   help="validation tokens per evaluation (default 16384)")
    p.add_argument("--device", default="auto",
                   help="auto, cpu or cuda (default auto; with --schedule, the file's)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per report per line")
    p.add_argument("--grid", action="store_true",
                   help="after training, evaluate the compression grid (sparsity × bits)")
    p.set_defaults(run=_run_train)


def _from_schedule_file(args: argparse.Namespace) -> Schedule:
    """``train --schedule FILE``: the file's schedule, and its settings where no flag is given."""
    from budgetune.export import read_schedule_file

    sf = read_schedule_file(args.schedule)
    defaults = Schedule()
    given = [f.name for f in schedule_fields()
             if getattr(args, f.name) != (0 if f.name in ("d_ff", "lr")
                                          else getattr(defaults, f.name))]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ValueError(f"--schedule {args.schedule} gives the schedule; drop {flags}, or "
                         "edit the file.")
    args.budget = sf.budget_flops if args.budget is None else args.budget
    if args.main_line is None and sf.main_line_flops and args.budget <= sf.main_line_flops:
        args.main_line = sf.main_line_flops  # a point of the file's main line
    args.device = sf.device if args.device == "auto" else args.device
    args.corpus_id = sf.corpus_id
    args.eval_tokens = sf.eval_tokens if args.eval_tokens is None else args.eval_tokens
    args.corpus = sf.corpus if args.corpus is None else args.corpus
    args.threads = sf.threads if args.threads is None else args.threads
    return sf.to_schedule()


def _run_train(args: argparse.Namespace) -> int:
    if args.schedule is not None:
        schedule = _from_schedule_file(args)
    else:
        schedule = Schedule(**{f.name: getattr(args, f.name) for f in schedule_fields()})
    args.budget = DEFAULT_TRAIN_BUDGET if args.budget is None else args.budget
    args.eval_tokens = 16384 if args.eval_tokens is None else args.eval_tokens
    args.corpus = "builtin" if args.corpus is None else args.corpus
    validate_budget(args.budget)
    from budgetune.trainables import Trial, TrialConfig

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    if args.main_line is not None:
        validate_budget(args.main_line, "main_line")
        if args.main_line < args.budget:
            raise ValueError(f"The value of `main_line` is {args.main_line:.4g}, but must be "
                             f">= --budget ({args.budget:.4g}).")
    config = TrialConfig(corpus=args.corpus, eval_tokens=args.eval_tokens,
                         n_reports=args.n_reports, device=args.device,
                         main_line_flops=args.main_line)
    if args.n_reports < 1 or args.eval_tokens < 1:
        raise ValueError("The values of `n_reports` and `eval_tokens` must be >= 1.")
    if not args.json:
        print(f"budgetune train: {schedule.model} d_model={schedule.d_model} "
              f"n_layers={schedule.n_layers} budget={args.budget:.3g} FLOPs "
              f"(loading corpus {args.corpus!r})", flush=True)
    trial = Trial(schedule, args.budget, config)
    if getattr(args, "corpus_id", "") and trial.data.corpus_id != args.corpus_id:
        raise ValueError(f"The corpus here tokenizes to corpus_id {trial.data.corpus_id}, but "
                         f"the schedule file's search used {args.corpus_id}: other text or "
                         "another tokenizer (another Python environment, or changed token "
                         "files); re-run it where the search ran.")
    if not args.json:
        from budgetune.trainables import cooldown_start

        lr = (f"wsd: warmup {schedule.warmup_steps} steps, cooldown ({schedule.cooldown_shape}) "
              f"from step {cooldown_start(trial.total_steps, schedule)}"
              if trial.wsd else "cosine")
        print(f"planned {trial.total_steps} steps of {trial.flops_per_step:.3g} FLOPs, lr "
              f"{lr}, unshare at step {trial.unshare_step(trial.total_steps)}, unigram loss "
              f"{trial.unigram_loss:.3f} nats, device {trial.device}", flush=True)
        print(f"{'step':>6} {'train_flops':>11} {'val_loss':>8} {'compr':>8} {'shared':>6} "
              f"{'n_params':>9} {'wall_s':>7}", flush=True)
    base = {"budget_flops": trial.budget_flops, "corpus_id": trial.data.corpus_id,
            **schedule.to_dict()}
    for report in trial.run():
        if args.json:
            print(json.dumps({"table": "reports", **base, **report.to_dict()}), flush=True)
        else:
            print(f"{report.step:>6} {report.train_flops:>11.3e} {report.val_loss:>8.3f} "
                  f"{report.val_loss_compressed:>8.3f} {str(report.shared):>6} "
                  f"{report.n_params:>9} {report.wall_s:>7.1f}", flush=True)
    if args.grid:
        _print_grid(trial.grid(), base, args.json)
    return 0


def _print_grid(cells, base: dict, as_json: bool) -> None:
    if not as_json:
        print(f"compression grid:\n{'sparsity':>8} {'bits':>4} {'val_loss_c':>10} {'MB':>8} "
              "one_shot")
    for cell in cells:
        if as_json:
            print(json.dumps({"table": "grid", "budget_flops": base["budget_flops"],
                              "corpus_id": base["corpus_id"], **cell.to_dict()}))
        else:
            print(f"{cell.sparsity:>8.2f} {cell.quant_bits:>4} {cell.val_loss_compressed:>10.4f}"
                  f" {cell.compressed_bytes / 1e6:>8.4f} {cell.one_shot}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="budgetune", description="Search Transformer training schedules "
                     "under a fixed FLOPs budget, and fit compute-optimal frontiers.")
    parser.add_argument("--version", action="version", version=f"budgetune {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_search_commands(sub)
    _add_train(sub)
    add_analysis_commands(sub)
    add_export_command(sub)
    add_serve_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.run(args)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
        return status
    except ValueError as e:
        sys.stderr.write(_error_line(e))
        return 2
    except KeyboardInterrupt:
        print("budgetune: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `budgetune best --json | head`: the reader has what it wanted
        # Python's recipe: point stdout at devnull so the interpreter's last flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by a closed pipe


if __name__ == "__main__":
    sys.exit(main())
