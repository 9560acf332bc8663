"""``budgetune export``: the winner of a query as a Hugging Face folder, its tokenizer, the
compressed artifact, ``schedule.yaml`` and a model card."""

from __future__ import annotations

from budgetune._cli_analysis import DEFAULT_RESULTS, _limit_flags


def add_export_command(sub) -> None:
    p = sub.add_parser(
        "export", help="write the best schedule's model for a budget: Hugging Face folder, "
        "tokenizer, compressed artifact, schedule.yaml, model card",
        description="Export the answer of `budgetune best` for a budget and size limit: the "
        "model as a Hugging Face folder (AutoModelForCausalLM / AutoModelForMaskedLM load it "
        "without budgetune), its tokenizer (AutoTokenizer), the compressed artifact at the "
        "chosen sparsity and bits (compressed.safetensors, with its stand-alone decoder "
        "load_compressed.py), schedule.yaml (re-run it with `budgetune train --schedule`) and a "
        "README.md model card. The weights come from the models the search kept "
        "(--keep-models), or are trained again with --retrain.")
    p.add_argument("--budget", type=float, required=True, help="training FLOPs")
    _limit_flags(p)
    p.add_argument("--model", choices=["gpt2", "bert"], default=None,
                   help="model family (needed when the results hold both)")
    p.add_argument("--results", default=DEFAULT_RESULTS,
                   help=f"results directory (default ./{DEFAULT_RESULTS})")
    p.add_argument("--name", default=None, help="only this search (default: all under it)")
    p.add_argument("--out", required=True, help="the folder to write (new or empty)")
    p.add_argument("--force", action="store_true",
                   help="replace --out even when it holds files")
    p.add_argument("--retrain", action="store_true",
                   help="train the point again when its weights were not kept (deterministic: "
                   "the same seed gives the same model)")
    p.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from budgetune.export import COMPRESSED_TOLERANCE, DENSE_TOLERANCE, export_best

    e = export_best(args.results, args.budget, args.out, max_mb=args.max_mb,
                    no_size_limit=args.no_size_limit, model=args.model, name=args.name,
                    force=args.force, retrain=args.retrain,
                    progress=lambda line: print(line, flush=True))
    b = e.best
    print(f"exported {b.model} d_model {b.schedule['d_model']} × {b.schedule['n_layers']} "
          f"layers, trial {b.trial_id}'s point at {b.trained_budget_flops:.3g} FLOPs "
          f"(the answer for {b.budget_flops:.3g}; size limit {b.size_limit}) to {e.out} "
          f"from the {e.source}")
    print(f"  val_loss {e.val_loss:.5f} measured on the export (search: "
          f"{e.val_loss_reported:.5f}); compressed ({b.sparsity:.2f} sparsity, "
          f"{b.quant_bits} bits) {e.val_loss_compressed:.5f} (search: "
          f"{e.val_loss_compressed_reported:.5f}); on the search's validation windows of "
          f"{e.eval_tokens:,} tokens")
    for what, now, then, tol in (("val_loss", e.val_loss, e.val_loss_reported, DENSE_TOLERANCE),
                                 ("compressed loss", e.val_loss_compressed,
                                  e.val_loss_compressed_reported, COMPRESSED_TOLERANCE)):
        if not abs(now - then) <= tol:
            print(f"  WARNING: the exported {what} differs from the search's by "
                  f"{now - then:+.2e} nats (more than {tol:g})")
    print(f"  compressed.safetensors {e.compressed_file_bytes:,} bytes; the search stated "
          f"{b.compressed_bytes:,}")
    for name, size in e.files.items():
        print(f"  {size:>12,}  {name}")
    return 0
