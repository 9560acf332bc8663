"""``budgetune export`` after real searches: the folder loads with plain transformers in a
process without budgetune and gives the search's losses; schedule.yaml re-runs the point to the
same loss; a point whose weights were not kept is trained again with --retrain; bad input is
one line, exit status 2, nothing written."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from budgetune.analysis import answer_best, load_results
from budgetune.results import kept_models, models_folder, point_path
from budgetune.search import SearchSpec, run_search
from budgetune.trainables import FAMILIES, load_data
from budgetune.trainables._batches import validation_batches

pytestmark = pytest.mark.slow  # two real searches, about two minutes

RUN = [sys.executable, "-m", "budgetune.cli"]
PLAIN = Path(__file__).with_name("plain_eval.py")
COMMON = {"n_layers": 2, "n_heads": 2, "seq_len": 32, "batch_size": 8, "vocab_size": 1024}
GPT2 = {"model": "gpt2", "d_model": [16, 32], "share_fraction": 0.25, "share_unit": 1,
        "prune_sparsity": [0.0, 0.5], "quant_bits": [32, 4], "lr": 3e-3, **COMMON}
BERT = {"model": "bert", "d_model": 16, "prune_sparsity": [0.0, 0.5], "quant_bits": [32, 8],
        "lr": 1e-3, **COMMON}


@pytest.fixture(scope="module")
def searches(tmp_path_factory):
    """A WSD gpt2 search whose every schedule is shared, then unshared (kept models: 2 per
    budget), and a cosine bert search that keeps none."""
    root = tmp_path_factory.mktemp("results")
    for name, space, budgets, keep in (("g", GPT2, (2e10, 6e10), 2), ("b", BERT, (3e10,), 0)):
        path = root.parent / f"{name}.yaml"
        path.write_text(yaml.safe_dump(space))
        run_search(SearchSpec(space=str(path), budgets=budgets, num_samples=4, max_mb=None,
                              results=str(root), name=name, eval_tokens=1024, repeats=0,
                              keep_models=keep), progress=lambda line: None)
    return root


def _cli(*args, env=None, timeout=600):
    return subprocess.run([*RUN, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _windows(tmp_path, schedule: dict, eval_tokens: int) -> Path:
    """The search's validation windows for this schedule, saved for a process without
    budgetune."""
    data = load_data("builtin", schedule["vocab_size"])
    family = FAMILIES[schedule["model"]]
    batches = validation_batches(data.valid, schedule["batch_size"], schedule["seq_len"],
                                 family.masked, data.vocab_size, data.mask_id, eval_tokens)
    arrays = {"n": np.array(len(batches))}
    for i, b in enumerate(batches):
        arrays[f"inputs{i}"], arrays[f"targets{i}"] = b.inputs.numpy(), b.targets.numpy()
        if b.positions is not None:
            arrays[f"positions{i}"] = b.positions.numpy()
    path = tmp_path / "windows.npz"
    np.savez(path, **arrays)
    return path


def _plain(folder, windows, family, artifact) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, str(PLAIN), str(folder), str(windows), family,
                        artifact], capture_output=True, text=True, timeout=300, env=env,
                       cwd=str(folder))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_export_loads_with_plain_transformers_and_gives_the_searchs_losses(searches, tmp_path):
    out = tmp_path / "export"
    r = _cli("export", "--budget", "6e10", "--model", "gpt2", "--results", str(searches),
             "--name", "g", "--out", str(out))
    assert r.returncode == 0, r.stderr
    best = answer_best(searches, 6e10, model="gpt2", name="g")
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "compressed.safetensors", "load_compressed.py", "schedule.yaml",
            "README.md"} <= names
    reports = load_results(searches, "g").reports
    point = reports[(reports["trial_id"] == best.trial_id) & reports["point"]
                    & (reports["budget_flops"] == best.trained_budget_flops)].iloc[-1]
    windows = _windows(tmp_path, best.schedule, 1024)  # the searches' --eval-tokens
    dense = _plain(out, windows, "gpt2", "dense")
    assert not dense["budgetune_imported"] and dense["class"] == "GPT2LMHeadModel"
    assert dense["n_layers"] == 2
    assert abs(dense["loss"] - point["val_loss"]) < 1e-4, (dense, point["val_loss"])
    compressed = _plain(out, windows, "gpt2", "compressed")
    assert not compressed["budgetune_imported"]
    cell = load_results(searches, "g").grid
    cell = cell[(cell["trial_id"] == best.trial_id)
                & (cell["budget_flops"] == best.trained_budget_flops)
                & (cell["sparsity"] == best.sparsity) & (cell["quant_bits"] == best.quant_bits)]
    assert abs(compressed["loss"] - cell["val_loss_compressed"].iloc[0]) < 1e-3
    size = (out / "compressed.safetensors").stat().st_size
    assert abs(size - best.compressed_bytes) <= 0.05 * best.compressed_bytes
    card = (out / "README.md").read_text()
    assert best.trial_id in card and f"{best.val_loss_compressed:.4f}" in card


def test_a_shared_then_unshared_winner_exports_unshared(searches, tmp_path):
    from safetensors.numpy import load_file

    out = tmp_path / "export"
    assert _cli("export", "--budget", "2e10", "--model", "gpt2", "--results", str(searches),
                "--name", "g", "--out", str(out)).returncode == 0
    weights = load_file(str(out / "model.safetensors"))
    w0, w1 = (weights[f"transformer.h.{i}.mlp.c_fc.weight"] for i in (0, 1))
    assert w0.shape == w1.shape and not np.array_equal(w0, w1)  # each depth its own block


def test_train_schedule_reruns_the_point_to_the_same_loss(searches, tmp_path):
    out = tmp_path / "export"
    assert _cli("export", "--budget", "2e10", "--model", "gpt2", "--results", str(searches),
                "--name", "g", "--out", str(out)).returncode == 0
    saved = yaml.safe_load((out / "schedule.yaml").read_text())
    assert saved["main_line_flops"] == 6e10  # a point of the WSD main line
    for budget in ([], ["--budget", "2e10"]):  # the file's budget, or the command
        r = _cli("train", "--schedule", str(out / "schedule.yaml"), *budget, "--json")
        assert r.returncode == 0, r.stderr
        last = json.loads(r.stdout.strip().splitlines()[-1])
        assert last["budget_flops"] == saved["budget_flops"] == 2e10
        assert last["val_loss"] == saved["val_loss"]  # exactly: the same run


def test_a_point_not_kept_is_refused_without_retrain_and_retrained_with_it(searches,
                                                                          tmp_path):
    out = tmp_path / "bert"
    r = _cli("export", "--budget", "3e10", "--model", "bert", "--results", str(searches),
             "--name", "b", "--out", str(out))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "--retrain" in r.stderr and not out.exists()
    r = _cli("export", "--budget", "3e10", "--model", "bert", "--results", str(searches),
             "--name", "b", "--out", str(out), "--retrain")
    assert r.returncode == 0, r.stderr
    assert "retraining" in r.stdout
    best = answer_best(searches, 3e10, model="bert", name="b")
    reports = load_results(searches, "b").reports
    point = reports[(reports["trial_id"] == best.trial_id) & reports["point"]].iloc[-1]
    windows = _windows(tmp_path, best.schedule, 1024)  # the searches' --eval-tokens
    dense = _plain(out, windows, "bert", "dense")
    assert dense["class"] == "RobertaPreLayerNormForMaskedLM"
    assert abs(dense["loss"] - point["val_loss"]) < 1e-4, (dense, point["val_loss"])


def test_disk_use_is_bounded_by_the_kept_models(searches):
    folder = Path(searches) / "g"
    for budget in (2e10, 6e10):
        kept = kept_models(models_folder(folder), budget)
        assert 1 <= len({k.recipe_key for k in kept}) <= 2
    assert kept_models(models_folder(Path(searches) / "b")) == []
    assert not list((folder / "tune").rglob("checkpoint_*"))  # ended trials: none left
    r = _cli("status", "--results", str(searches), "--name", "g", "--json")
    (status,) = json.loads(r.stdout)
    assert status["disk"]["kept_models"] == len(kept_models(models_folder(folder)))
    assert status["disk"]["total"] >= status["disk"]["models"] > 0


@pytest.mark.parametrize("case", ["not empty", "no point", "no tokenizer cache", "results"])
def test_bad_export_input_is_one_line_exit_2_and_writes_nothing(searches, tmp_path, case):
    out, env = tmp_path / "out", {}
    args = ["export", "--budget", "6e10", "--model", "gpt2", "--results", str(searches),
            "--name", "g", "--out", str(out)]
    if case == "not empty":
        out.mkdir()
        (out / "mine.txt").write_text("keep me")
    elif case == "no point":
        args += ["--max-mb", "0.000001"]
    elif case == "results":  # --force onto the results themselves: refused, not replaced
        args = [*args[:-1], str(searches), "--force"]
    else:
        env = {"BUDGETUNE_CACHE": str(tmp_path / "empty-cache")}
    r = _cli(*args, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    if case == "not empty":
        assert [p.name for p in out.iterdir()] == ["mine.txt"]
        assert "--force" in r.stderr
    elif case == "results":
        assert {"g", "b"} <= {p.name for p in searches.iterdir()}
    else:
        assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no leftovers
    if case == "not empty":
        r = _cli(*args, "--force")
        assert r.returncode == 0, r.stderr
        assert "mine.txt" not in {p.name for p in out.iterdir()}


def test_kept_model_paths_are_where_export_looks(searches):
    folder = models_folder(Path(searches) / "g")
    k = kept_models(folder)[0]
    assert k.path == point_path(folder, k.budget_flops, k.experiment, k.trial_id)
