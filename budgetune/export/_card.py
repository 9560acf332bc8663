"""The model card (``README.md``) of an export: what the model is, what its numbers rest on, the
frontier around it, how it was found, and how to load and re-run it. Text only: every figure
comes from the ``best`` answer and from what ``export`` measured."""

from __future__ import annotations

from budgetune.analysis import extrapolation_text


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.4g} MB"


def _corpus_text(corpus: str) -> str:
    """What ``--corpus`` the search trained on, in words."""
    if corpus == "builtin":
        return "the Python standard library's source, tokenized locally"
    if corpus.startswith("python:"):
        return "every installed Python source file of the search's environment, tokenized locally"
    return f"`{corpus}`"


def _loading(family: str) -> str:
    auto = "AutoModelForCausalLM" if family == "gpt2" else "AutoModelForMaskedLM"
    lines = ["```python",
             f"from transformers import AutoTokenizer, {auto}",
             f'model = {auto}.from_pretrained("THIS_FOLDER")',
             'tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER")']
    if family == "bert":
        lines += ["# trained with position ids 0..T-1 given explicitly (no padding offset):",
                  "import torch",
                  'ids = tokenizer("def f(x):", return_tensors="pt").input_ids',
                  "logits = model(input_ids=ids, position_ids=torch.arange(ids.shape[1])"
                  "[None]).logits"]
    lines += ["```", "", "The compressed model (decoded to float weights; needs torch, "
              "safetensors and transformers, not budgetune):", "", "```python",
              "from load_compressed import load_compressed",
              'model = load_compressed("THIS_FOLDER")', "```"]
    return "\n".join(lines)


def model_card(e, sf) -> str:
    """``e``: an ``Exported``; ``sf``: its ``ScheduleFile``."""
    b = e.best
    s = b.schedule
    trained = b.trained_budget_flops
    line = (f"a cooldown branched from a main line planned for {b.main_line_flops:.3g} FLOPs "
            "(warmup-stable-decay)" if sf.main_line_flops else f"a {s['lr_schedule']} run")
    cell = (f"pruned to {b.sparsity:.0%}" if b.sparsity else "dense") + (
        f" at {b.quant_bits} bits" if b.quant_bits < 32 else ", fp32")
    one_shot = " (pruned one-shot beyond its training target)" if b.one_shot else ""
    noise = "\n".join(
        f"| {r['d_model']} | {r['n_layers']} | {r['sparsity']:.2f} | {r['quant_bits']} | "
        f"{r['loss_mean']:.4f} | {_mb(r['compressed_bytes'])} | {r['n_seeds']} |"
        for r in b.within_noise)
    f = b.frontier
    frontier = (f"{f.loss:.4f} nats, 95% interval [{f.interval[0]:.4f}, {f.interval[1]:.4f}]"
                if f.loss is not None and f.interval else
                f"{f.loss:.4f} nats" if f.loss is not None else f"not quoted ({f.reason})")
    r = b.recommendation
    allocation = (f"N = {r.n_params_nonemb:,} non-embedding parameters, D = {r.tokens:,} "
                  f"tokens (d_model {r.shape['d_model']}, {r.shape['n_layers']} layers), "
                  f"expected {r.expected_loss:.4f} nats uncompressed"
                  if r.reason is None else f"none ({r.reason})")
    schedule_rows = "\n".join(f"| `{k}` | {v} |" for k, v in s.items())
    rerun = "budgetune train --schedule schedule.yaml"
    chosen = " (the smallest of them was chosen)" if b.smaller_preferred else ""
    layers = f"{s['n_layers']} layer{'s' if s['n_layers'] != 1 else ''}"
    seeds = (f"{b.basis} (seeds {list(b.seeds)})" if b.n_seeds > 1 else
             f"single seed ({s['seed']}): the interval is the evaluation's alone, not seed "
             "noise")
    shared = (f"share_fraction {s['share_fraction']} of the main line's steps; this point "
              f"trained {b.share_fraction_effective:.2f} of its steps shared (the switch is "
              "placed on the main line)" if s["share_fraction"] else "never shared")
    how = ("a repeat of one of the search's best recipes with another seed (trained in full, "
           "FIFO)" if b.experiment.startswith("repeats") else
           "a trial proposed by the search's Optuna sampler and judged by ASHA on the FLOPs "
           "axis, on Ray Tune")
    where = extrapolation_text(b.factor, b.largest_measured_budget)
    where = (f"The budget asked is {where}: the model is the measured point at {trained:.3g} "
             "FLOPs, and only the frontier and allocation figures below are extrapolated."
             if b.extrapolated else f"The budget asked is {where}.")
    facts = "\n".join(f"| {k} | {v} |" for k, v in [
        ("budget asked", f"{b.budget_flops:.3g} FLOPs"),
        ("budget point exported", f"{trained:.3g} training FLOPs: {line}"),
        ("compression", cell + one_shot),
        ("weight sharing", shared),
        ("loss of the recipe", f"{b.val_loss_compressed:.4f} nats (val_loss_compressed), 95% "
         f"interval [{b.loss_interval[0]:.4f}, {b.loss_interval[1]:.4f}], {seeds}"),
        (f"this model (seed {s['seed']}), dense", f"{e.val_loss:.5f} nats measured after "
         f"export; the search measured {e.val_loss_reported:.5f}"),
        ("this model, compressed", f"{e.val_loss_compressed:.5f} nats measured from "
         "`compressed.safetensors`; the search measured "
         f"{e.val_loss_compressed_reported:.5f}"),
        ("evaluated on", f"the search's validation windows, {e.eval_tokens:,} tokens of corpus "
         f"`{e.corpus_id}` ({_corpus_text(sf.corpus)})"),
        ("size", f"{_mb(b.compressed_bytes)} compressed, as the search stated it; "
         f"`compressed.safetensors` is {_mb(e.compressed_file_bytes)}"),
        ("size limit", b.size_limit),
        ("candidates", f"{b.n_candidates} recipes within the budget and the limit")])
    return f"""# {b.model} · d_model {s['d_model']} · {layers} · {trained:.3g} FLOPs

Exported by budgetune: the answer of `budgetune best --budget {b.budget_flops:.3g}` under the
size limit {b.size_limit}. {where}

| | |
|---|---|
{facts}

## The frontier around it

Recipes within noise of the lowest loss at this budget{chosen}:

| d_model | n_layers | sparsity | bits | loss | size | seeds |
|---|---|---|---|---|---|---|
{noise}

- The frontier L(C) at {b.budget_flops:.3g} FLOPs: {frontier}.
- The fitted law's compute-optimal allocation there: {allocation}.

## How it was found

Search `{sf.notes.get('search')}` (search id `{b.search_id}`), experiment `{b.experiment}`,
trial `{b.trial_id}`: {how}; the weights are from the {e.source}.
The recipe's loss is the validation loss of the model compressed to its sparsity and bits.

## Schedule

| field | value |
|---|---|
{schedule_rows}

Re-run it: `{rerun}`. The same seed, budget, main line, evaluation tokens, threads and device
give the same final `val_loss` (the uncompressed model's); the `val_loss_compressed` it prints is
at the schedule's own pruning target, which differs from this export's cell when that cell was
pruned one-shot beyond it.

## Loading

{_loading(b.model)}
"""
