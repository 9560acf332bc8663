"""The search subcommands of ``budgetune``: search, status, submit. Thin calls into search."""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys
from dataclasses import fields
from pathlib import Path

from budgetune.search._spec import (
    DEFAULT_BUDGETS,
    DEFAULT_MAX_MB,
    DEFAULT_REPEATS,
    EMBEDDED_MAX_MB,
    EMBEDDED_REPEATS,
    SearchSpec,
    default_budgets,
    default_repeats,
)


def add_search_commands(sub) -> None:
    p = sub.add_parser("search", help="search schedules on Ray (ASHA on FLOPs, Optuna TPE)",
                       description="Search training schedules under FLOPs budgets on Ray. With "
                       "no arguments: the embedded default (local Ray, the default space at "
                       "three budgets with a size limit, a few minutes on a laptop).")
    d = SearchSpec()
    add = functools.partial(_add_setting, p)
    add("--space", default=d.space,
        help="quick, default, paper, tiny, or a .yaml/.toml space file (default %(default)s)")
    add("--budget", type=float, nargs="+", default=None,
        help="training FLOPs budgets: each a budget point of every WSD trial, or under cosine "
        "one Tune experiment per budget (default "
        f"{' '.join(f'{b:g}' for b in DEFAULT_BUDGETS)}, or for a space whose largest model "
        "needs more or over 100x less, three budgets 3x apart from the smallest that gives it "
        f"10 steps: tiny {' '.join(f'{b:g}' for b in default_budgets('tiny'))})")
    add("--num-samples", type=int, default=None,
        help="trials per experiment: per budget under cosine, in all under wsd, where each "
        "trial gives a point at every budget (default 6 per budget: under wsd 6 × the number "
        "of budgets)")
    add("--lr-schedule", default="auto", choices=["auto", "cosine", "wsd"],
        help="wsd: one Tune experiment for all budgets, warmup-stable-decay trials planned for "
        "the largest that branch a cooldown at every budget and ASHA rung, so ASHA compares "
        "annealed losses; cosine: one experiment per budget, cosine trials; auto: wsd for "
        "several budgets, cosine for one (default %(default)s)")
    add("--max-mb", type=float, default=None,
        help=f"size limit of the compressed model, MB (default {EMBEDDED_MAX_MB:g} for the "
        f"embedded default's `default` space, {DEFAULT_MAX_MB:g} for any other)")
    add("--no-size-limit", action="store_true",
        help="no --max-mb (default: off, the limit applies)")
    add("--max-total-flops", type=float, default=d.max_total_flops,
        help="search-wide cap on training FLOPs, repeats included (default %(default)s: no "
        "cap)")
    add("--searcher", default=d.searcher, choices=["tpe", "random", "grid"],
        help="Optuna TPE, Optuna random, or every schedule of a finite space (default "
        "%(default)s)")
    add("--scheduler", default=d.scheduler, choices=["asha", "fifo"],
        help="ASHA early stopping on the FLOPs axis, or none (default %(default)s)")
    add("--reduction-factor", type=float, default=d.reduction_factor,
        help="ASHA's η (default %(default)s)")
    add("--grace-fraction", type=float, default=d.grace_fraction,
        help="ASHA's grace_period as a fraction of the budget (default %(default).3g); under "
        "wsd with several budgets the grace period is the smallest budget")
    add("--max-concurrent", type=int, default=d.max_concurrent,
        help="trials at once (default %(default)s: as many as the CPUs allow)")
    add("--cpus-per-trial", type=int, default=d.cpus_per_trial,
        help="CPUs (torch threads) per trial (default %(default)s)")
    add("--gpus-per-trial", type=float, default=d.gpus_per_trial,
        help="GPUs per trial; > 0 trains in bf16 autocast on CUDA (default %(default)s)")
    add("--repeats", type=int, default=None,
        help="after the search, retrain the top K recipes of each budget with 2 more seeds "
        "(FIFO, charged to --max-total-flops), so the best rests on 3 seeds (default "
        f"{EMBEDDED_REPEATS} for the embedded default's `default` space, {DEFAULT_REPEATS} "
        "for any other)")
    add("--keep-models", type=int, default=d.keep_models, metavar="K",
        help="keep the final model of each budget point of the best K schedules per budget "
        "(and their repeats' seeds), in RESULTS/NAME/models, for `budgetune export`; 0 keeps "
        "none (default %(default)s)")
    add("--corpus", default=d.corpus,
        help="what the trials train on: builtin (the Python standard library), python "
        "(every installed Python source file, ~20x builtin, tokenized once into the cache), "
        "a folder holding train.bin, val.bin and tokenizer.json, a .txt/.jsonl/.parquet file "
        "or folder, or hf:NAME (default %(default)s)")
    p.add_argument("--address", default=None,
                   help="join a cluster: auto or ray://HOST:PORT (default %(default)s: start "
                   "local Ray)")
    p.add_argument("--results", default=d.results,
                   help="results directory (default %(default)s)")
    p.add_argument("--name", default=d.name,
                   help="this search's folder under --results (default %(default)s)")
    add("--seed", type=int, default=d.seed,
        help="the searcher's seed (default %(default)s)")
    add("--eval-tokens", type=int, default=d.eval_tokens,
        help="validation tokens per evaluation (default %(default)s); fewer make short trials "
        "cheaper and their losses noisier (BENCHMARKS.md)")
    p.add_argument("--resume", action="store_true",
                   help="continue the search --results/--name with its saved settings")
    p.add_argument("--dry-run", action="store_true",
                   help="print the planned trials, FLOPs and wall time; start nothing")
    p.set_defaults(run=_run_search, given=())

    st = sub.add_parser("status", help="trials running/stopped/done, FLOPs spent, best so far")
    st.add_argument("--results", default="results",
                    help="the results folder the searches wrote (default: results)")
    st.add_argument("--name", default=None,
                    help="the search's name (its folder under --results); default: every "
                    "search there")
    st.add_argument("--json", action="store_true",
                    help="print the status as one JSON object instead of text")
    st.set_defaults(run=_run_status)

    sm = sub.add_parser("submit", help="submit a search as a Ray Job",
                        description="Submit `budgetune search ...` as a Ray Job: "
                        "budgetune submit --address http://HEAD:8265 -- search --space quick")
    sm.add_argument("--address", required=True, help="the Jobs address, http://HEAD:8265")
    sm.add_argument("--no-wait", action="store_true", help="return once submitted")
    sm.add_argument("command", nargs=argparse.REMAINDER,
                    help="-- search [flags]: the budgetune command the job runs")
    sm.set_defaults(run=_run_submit)


class _Given(argparse.Action):
    """Store a value and remember that the user gave it: ``--resume`` refuses settings."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        namespace.given = (*namespace.given, option_string)


def _add_setting(parser, flag: str, **kwargs) -> None:
    """A flag that is one of the search's saved settings (search.json)."""
    if kwargs.pop("action", None) == "store_true":
        kwargs.update(nargs=0, const=True, default=False)
    parser.add_argument(flag, action=_Given, **kwargs)


def _spec_from_args(args) -> SearchSpec:
    if args.no_size_limit and args.max_mb is not None:
        raise ValueError(f"--no-size-limit and --max-mb {args.max_mb:g} contradict each other; "
                         "give one of them.")
    return SearchSpec(
        space=args.space, budgets=tuple(args.budget or default_budgets(args.space)),
        num_samples=args.num_samples,
        max_mb=None if args.no_size_limit else (
            "auto" if args.max_mb is None else args.max_mb),
        max_total_flops=args.max_total_flops, searcher=args.searcher,
        scheduler=args.scheduler, reduction_factor=args.reduction_factor,
        grace_fraction=args.grace_fraction, max_concurrent=args.max_concurrent,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
        address=args.address, results=args.results, name=args.name, seed=args.seed,
        eval_tokens=args.eval_tokens, lr_schedule=args.lr_schedule,
        repeats=default_repeats(args.space) if args.repeats is None else args.repeats,
        keep_models=args.keep_models, corpus=args.corpus)


def _saved_spec(args) -> SearchSpec:
    from budgetune.results import SPEC_FILE

    path = Path(args.results) / args.name / SPEC_FILE
    if not path.is_file():
        raise ValueError(f"There is no search to resume at {str(path.parent)!r}; check "
                         "--results and --name.")
    saved = json.loads(path.read_text())
    known = {f.name for f in fields(SearchSpec)}
    values = {k: v for k, v in saved.items() if k in known}
    values["budgets"] = tuple(values["budgets"])
    values.setdefault("lr_schedule", "cosine")  # searches saved before WSD were all cosine
    values["address"] = args.address  # the cluster may have moved; the rest may not
    # where it was found, not where it was first written: a moved folder, another directory
    values["results"], values["name"] = args.results, args.name
    return SearchSpec(**values)


def _run_search(args) -> int:
    if args.resume and args.given:
        raise ValueError(f"--resume continues a search with its saved settings; drop "
                         f"{'/'.join(dict.fromkeys(args.given))} or start a new --name.")
    spec = _saved_spec(args) if args.resume else _spec_from_args(args)
    if args.dry_run:
        from budgetune.results import compact_parts
        from budgetune.search._plan import format_plan, plan_search

        compact_parts()  # a bad BUDGETUNE_COMPACT_PARTS is refused here too, as a run would
        from budgetune.trainables import prepare_corpus

        # A bad --corpus too (a missing or malformed token folder, no mask token for bert, a
        # python:DIGEST of another environment); `python` itself is built by the first run.
        prepare_corpus(spec.corpus, spec.vocab_sizes(), masked="bert" in spec.models(),
                       build=False)

        print(format_plan(plan_search(spec)))
        return 0
    from budgetune.search import check_address, cluster_address, run_search

    check_address(cluster_address(spec.address))  # before writing anything
    run_search(spec, resume=args.resume, progress=lambda line: print(line, flush=True))
    return _print_summary(spec)


def _print_summary(spec: SearchSpec) -> int:
    """The best schedule per budget: the same pick (``analysis.budget_best``) as ``status``,
    ``best`` and ``report``, under the search's own size limit. Returns the exit status: 1 when
    no trial reported and trials failed (their tracebacks are Tune's error.txt files)."""
    from budgetune.analysis import (
        BEST_HEADER,
        budget_best,
        describe_limit,
        format_best_line,
        load_results,
        write_plots,
    )
    from budgetune.analysis._status import NO_SEARCH_LIMIT, SEARCH_LIMIT
    from budgetune.results import ResultsError

    try:  # a search the cap stopped before any trial trained its budget has no answer yet
        results = load_results(spec.results, spec.name)
        paths, _ = write_plots(results, spec.folder() / "plots", max_bytes=spec.max_bytes)
    except ResultsError as e:
        errors = sorted((spec.folder() / "tune").rglob("error.txt"))
        if errors:
            print(f"\nbudgetune search: no trial reported and {len(errors)} failed; read "
                  f"{errors[0]} (and the others under {spec.folder() / 'tune'}), fix the cause, "
                  "then start again or --resume", file=sys.stderr)
            return 1
        print(f"\nno summary: {e}")
        return 0
    source = SEARCH_LIMIT if spec.max_mb is not None else NO_SEARCH_LIMIT
    print(f"\nbest schedule per budget (budget points, val_loss_compressed; size limit "
          f"{describe_limit(spec.max_bytes, source)}):")
    print(BEST_HEADER)
    for b in budget_best(results, sorted(spec.budgets), spec.max_bytes):
        print(format_best_line(b))
    print(f"plots: {', '.join(str(p) for p in paths)}")
    if spec.keep_models:
        largest = f"{max(spec.budgets):.3g}".replace("e+", "e")
        print(f"models: the best {spec.keep_models} training recipes per budget are kept in "
              f"{spec.models_folder()}; export the winner with `budgetune export --budget "
              f"{largest} --results {spec.results} --name {spec.name} --out DIR`")
    return 0


def _run_status(args) -> int:
    from budgetune.analysis import format_status, search_status, status_json

    if args.json:
        print(status_json(args.results, args.name))
    else:
        print(format_status(search_status(args.results, args.name)))
    return 0


def _run_submit(args) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or command[0] != "search":
        raise ValueError("Give the job's command after --, e.g. `budgetune submit --address "
                         "http://127.0.0.1:8265 -- search --space quick`.")
    from budgetune.search import submit_job

    entrypoint = " ".join(shlex.quote(c) for c in
                          [sys.executable, "-m", "budgetune.cli", *command])
    return submit_job(args.address, entrypoint, wait=not args.no_wait)
