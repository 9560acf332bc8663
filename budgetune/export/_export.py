"""``budgetune export``: the answer of ``best`` for a query, as files the ecosystem loads.

1. Ask ``best`` (the same query, the same pick) and find the winner's budget point: its trial,
   its budget, its compression cell.
2. Take the point's model from the search's kept models (``--keep-models``), or train it again
   (``--retrain``: a point is deterministic, the same steps and losses), or say which it is.
3. Write, into a temporary folder next to ``--out`` and renamed onto it at the end (nothing is
   half-written; an existing non-empty ``--out`` is refused unless ``--force``):
   the Hugging Face model (``save_pretrained``: unshared, pruning masks folded in), its
   tokenizer, the compressed artifact at the chosen cell with its stand-alone decoder
   (``load_compressed.py``), ``schedule.yaml`` and a model card (``README.md``).
4. Measure what was written: the exported model's validation loss on the search's own
   validation windows, and the compressed artifact's, decoded as a user would; both are
   printed and put in the card beside what the search reported.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from budgetune.analysis import BestSchedule, answer_best, compressed_variants, load_results
from budgetune.export._card import model_card
from budgetune.export._schedule_file import ScheduleFile, write_schedule_file
from budgetune.results import (
    MODELS_DIR,
    WHOLE_MODEL_SCHEMA,
    find_kept,
    models_folder,
    read_search_spec,
    search_folders,
)

DENSE_TOLERANCE = 1e-4  # nats: the exported model against the search's val_loss
COMPRESSED_TOLERANCE = 1e-3  # nats: the decoded artifact against the cell's loss
SEARCH_EVAL_TOKENS = 8192  # SearchSpec's default, for a search.json without eval_tokens


@dataclass(frozen=True)
class Exported:
    """What ``export_best`` wrote and measured."""

    out: Path
    best: BestSchedule
    files: dict[str, int]  # file name -> bytes
    source: str  # where the weights came from: the kept model's file, or "point trained again"
    val_loss: float  # the exported model, measured now  # nats
    val_loss_reported: float  # the search's, for this trial and point
    val_loss_compressed: float  # the decoded artifact, measured now
    val_loss_compressed_reported: float  # the search's, for this trial, point and cell
    compressed_file_bytes: int
    eval_tokens: int
    corpus_id: str


def check_out(out: Path, force: bool, results: str | Path | None = None) -> None:
    """Refuse an ``--out`` that is a file, holds files (unless ``force``), or would replace
    the results folder (or one above it)."""
    out = out.resolve()
    if results is not None and Path(results).resolve().is_relative_to(out):
        raise ValueError(f"--out {str(out)!r} holds the results {str(results)!r}; give a "
                         "folder outside them.")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file; give a folder.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ValueError(f"--out {str(out)!r} exists and is not empty; give a new or empty "
                         "folder, or --force to replace it.")


def export_best(root: str | Path, budget_flops: float, out: str | Path, *,
                max_mb: float | None = None, no_size_limit: bool = False,
                model: str | None = None, name: str | None = None, force: bool = False,
                retrain: bool = False, progress=print) -> Exported:
    """Export the answer of ``best`` for (``budget_flops``, size limit, ``model``) to ``out``."""
    out = Path(out).resolve()
    check_out(out, force, root)
    results = load_results(root, name)
    best = answer_best(root, budget_flops, max_mb, no_size_limit, model, name, results=results)
    point = _point_row(results, best)
    if int(point["schema_version"]) < WHOLE_MODEL_SCHEMA:
        raise ValueError(f"Trial {best.trial_id}'s point was searched before whole-model "
                         "compression (results schema <= 3: its size and compressed loss kept "
                         "the token embedding fp32), so this export could not match them; run "
                         "the search again with this budgetune.")
    folder, spec = _search_of(root, name, best.trial_id)
    spec = spec or {}
    kept = find_kept(models_folder(folder), best.trained_budget_flops, best.trial_id)
    if kept is None and not retrain:
        keep = spec.get("keep_models", 0)
        kept_what = (f"the search keeps the models of the {keep} best training recipes per "
                     "budget under its own size limit" if keep else
                     "the search kept no models (--keep-models 0)")
        raise ValueError(
            f"The weights of the winner (trial {best.trial_id}, its budget point at "
            f"{best.trained_budget_flops:.3g} FLOPs) were not kept: {kept_what}; add "
            "--retrain to train it again (deterministic).")
    sf = ScheduleFile(
        schedule=dict(best.schedule), budget_flops=best.trained_budget_flops,
        main_line_flops=(best.main_line_flops if best.main_line_flops > best.trained_budget_flops
                         else None),
        eval_tokens=int(spec.get("eval_tokens", SEARCH_EVAL_TOKENS)),
        corpus=str(spec.get("corpus", "builtin")),
        corpus_id=str(point["corpus_id"]), threads=int(spec.get("cpus_per_trial", 1)),
        val_loss=float(point["val_loss"]),
        device="cuda" if spec.get("gpus_per_trial", 0) > 0 else "cpu",
        notes={"search": folder.name, "trial_id": best.trial_id,
               "experiment": best.experiment})
    trial, tokenizer, source = _evaluation_trial(sf, kept, retrain, progress)
    return _write(out, best, sf, trial, tokenizer, source, point, _cell_loss(results, best))


def _of_point(frame, best: BestSchedule):
    """The rows of ``frame`` of the winner's budget point."""
    return frame[(frame["search_id"] == best.search_id)
                 & (frame["experiment"] == best.experiment)
                 & (frame["trial_id"] == best.trial_id)
                 & (frame["budget_flops"] == best.trained_budget_flops)]


def _point_row(results, best: BestSchedule):
    rows = _of_point(results.reports, best)
    return rows[rows["point"].astype(bool)].sort_values("step").iloc[-1]


def _cell_loss(results, best: BestSchedule) -> float:
    v = _of_point(compressed_variants(results), best)
    cell = v[(v["sparsity"] == best.sparsity) & (v["quant_bits"] == best.quant_bits)]
    return float(cell["loss"].iloc[0])


def _search_of(root, name: str | None, trial_id: str) -> tuple[Path, dict | None]:
    """The search folder that ran ``trial_id``, and its saved settings."""
    from budgetune.results import read_table

    for folder in search_folders(root):
        if (name is None or folder.name == name) and trial_id in set(
                read_table(folder, "trials")["trial_id"]):
            return folder, read_search_spec(folder)
    raise ValueError(f"No search under {str(root)!r} ran trial {trial_id}; check --results.")


def _evaluation_trial(sf: ScheduleFile, kept, retrain: bool, progress):
    """A ``Trial`` of the point holding the point's model (the kept one loaded into it, or
    trained again; its evaluation is the search's: same windows, same loss), the text of its
    tokenizer, and where the model came from."""
    import torch

    from budgetune.trainables import (
        BUILTIN,
        Trial,
        TrialConfig,
        cached_tokenizer,
        load_corpus,
        load_point,
    )

    if sf.threads:
        torch.set_num_threads(sf.threads)
    schedule = sf.to_schedule()
    config = TrialConfig(corpus=sf.corpus, eval_tokens=sf.eval_tokens, n_reports=4,
                         main_line_flops=sf.main_line_flops, device=sf.device)
    if kept is not None and sf.corpus == BUILTIN:  # from the cache only: not trained here
        try:
            cached_tokenizer(load_corpus(BUILTIN), schedule.vocab_size)
        except ValueError:
            if not retrain:
                raise
            kept = None  # --retrain: the tokenizer and the model, both trained again
    trial = Trial(schedule, sf.budget_flops, config)
    if trial.data.corpus_id != sf.corpus_id:
        raise ValueError(f"The corpus and tokenizer here (corpus_id {trial.data.corpus_id}) "
                         f"are not the ones the search used ({sf.corpus_id}): other text (another "
                         "Python environment, or changed token files); export where the search "
                         "ran.")
    if kept is not None:
        try:
            trial.model = load_point(schedule, trial.data.eot_id, kept.path).to(trial.device)
        except FileNotFoundError:  # a running search pruned it meanwhile
            raise ValueError(f"The kept model {str(kept.path)!r} was deleted meanwhile by "
                             "the running search; run export again, or add --retrain.") from None
        trial.pruned_to = schedule.prune_sparsity
        source = f"model the search kept ({MODELS_DIR}/{kept.path.parent.name}/{kept.path.name})"
        return trial, Path(trial.data.tokenizer_path).read_text(), source
    progress(f"retraining trial {sf.notes['trial_id']}'s point: {trial.total_steps} steps of "
             f"{trial.flops_per_step:.3g} FLOPs ({sf.budget_flops:.3g} FLOPs)")
    for report in trial.run():
        progress(f"  step {report.step}/{trial.total_steps}  val_loss {report.val_loss:.4f}  "
                 f"{report.wall_s:.0f} s")
    return trial, Path(trial.data.tokenizer_path).read_text(), "point trained again"


def _write(out: Path, best: BestSchedule, sf: ScheduleFile, trial, tokenizer: str, source: str,
           point, cell_loss: float) -> Exported:
    from budgetune.trainables import (
        DECODER,
        hf_model,
        load_compressed,
        point_model,
        save_compressed,
        save_tokenizer,
    )

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    except OSError as e:
        raise ValueError(f"Cannot write next to --out {str(out)!r} ({e.strerror}); give a "
                         "folder you can write to.") from None
    try:
        model = point_model(trial.model, trial.family)
        hf = hf_model(model, trial.family)
        hf.save_pretrained(tmp)
        save_tokenizer(tokenizer, trial.family.name, tmp,
                       model_max_length=trial.schedule.seq_len, eot_id=trial.data.eot_id,
                       mask_id=trial.data.mask_id)
        compressed = save_compressed(model, trial.family, best.sparsity, best.quant_bits, tmp)
        shutil.copy(DECODER, tmp / DECODER.name)
        write_schedule_file(tmp / "schedule.yaml", sf)
        val_loss = trial.evaluate(hf.to(trial.device))
        decoded = load_compressed(tmp).to(trial.device)
        val_loss_c = trial.evaluate(decoded)
        exported = Exported(
            out=out, best=best, files={}, source=source,
            val_loss=val_loss, val_loss_reported=float(point["val_loss"]),
            val_loss_compressed=val_loss_c, val_loss_compressed_reported=cell_loss,
            compressed_file_bytes=compressed.stat().st_size, eval_tokens=sf.eval_tokens,
            corpus_id=sf.corpus_id)
        (tmp / "README.md").write_text(model_card(exported, sf))
        files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
        _ordinary_permissions(tmp)
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return replace(exported, files=files)


def _ordinary_permissions(folder: Path) -> None:
    """The permissions of a folder and files made the ordinary way (under the umask): a
    temporary folder, and some files written through temporary names, are the owner's alone."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def _replace(tmp: Path, out: Path) -> None:
    """Put ``tmp`` where ``out`` is: renamed onto it (an old ``out`` moved aside first and
    deleted after, so a failure leaves one or the other whole)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
