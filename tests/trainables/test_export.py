"""Exports load without budgetune and give the trial's own losses: the Hugging Face folder, the
compressed artifact (decoded by the standalone ``load_compressed.py``), the kept point model
and the tokenizer. The loads run in a subprocess that imports transformers, torch and numpy
only, on validation batches saved as .npy files."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from safetensors import safe_open
from torch.nn.utils import prune

from budgetune.spaces import DEFAULT, Choice, Schedule
from budgetune.trainables import (
    FAMILIES,
    Trial,
    TrialConfig,
    block_linears,
    compressed_bytes,
    hf_model,
    is_shared,
    load_data,
    load_point,
    point_model,
    save_compressed,
    save_point,
    save_tokenizer,
)
from budgetune.trainables._export import DECODER

CONFIG = TrialConfig(eval_tokens=1024, n_reports=2)
TINY = Schedule(d_model=16, n_layers=2, n_heads=2, seq_len=32, batch_size=8, vocab_size=1024)
BUDGET = {"gpt2": 5e9, "bert": 2.5e9}  # about 130 and 150 steps
CELLS = [(0.5, 4), (0.0, 8), (0.75, 32)]
CASES = [(model, kind) for model in ("gpt2", "bert") for kind in ("pruned", "shared")]

# Run in a fresh interpreter: budgetune is never imported (checked at the end).
LOADER = textwrap.dedent("""
    import json, sys
    import numpy as np, torch, torch.nn.functional as F
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM
    jobs, losses = json.load(open(sys.argv[1])), {}
    for key, job in jobs.items():
        if job["kind"] == "hf":
            auto = AutoModelForMaskedLM if job["masked"] else AutoModelForCausalLM
            model = auto.from_pretrained(job["folder"]).eval()
        else:
            sys.path.insert(0, job["folder"])
            sys.modules.pop("load_compressed", None)
            from load_compressed import load_compressed
            model = load_compressed(job["folder"])
            sys.path.pop(0)
        data, token_losses = np.load(job["batches"]), []
        for i in range(len(data.files) // 3):
            inputs, targets = (torch.from_numpy(data[f"{k}{i}"]) for k in ("inputs", "targets"))
            with torch.no_grad():
                if job["masked"]:  # position ids given, as budgetune's loss does
                    b, t = inputs.shape
                    positions = torch.arange(t).expand(b, t)
                    logits = model(input_ids=inputs, position_ids=positions).logits
                    logits = logits[torch.from_numpy(data[f"positions{i}"])]
                else:
                    logits = model(input_ids=inputs).logits.flatten(0, 1)
            token_losses.append(F.cross_entropy(logits, targets.reshape(-1), reduction="none"))
        losses[key] = torch.cat(token_losses).double().mean().item()
    assert not [m for m in sys.modules if m.startswith("budgetune")], "budgetune was imported"
    print(json.dumps(losses))
""")


def _trained(model: str, kind: str) -> Trial:
    """pruned: trained to the end at 50% sparsity (masks in place, unshared at the end);
    shared: stopped at its first report, half-way, before its switch at 90% of the steps."""
    s = TINY.replace(model=model)
    if kind == "pruned":
        trial = Trial(s.replace(prune_sparsity=0.5, prune_fraction=0.5), BUDGET[model], CONFIG)
        list(trial.run())
    else:
        trial = Trial(s.replace(share_fraction=0.9), BUDGET[model], CONFIG)
        next(iter(trial.run()))
    return trial


def _save_batches(trial: Trial, path) -> None:
    arrays = {}
    for i, batch in enumerate(trial.valid):
        arrays[f"inputs{i}"], arrays[f"targets{i}"] = batch.inputs.numpy(), batch.targets.numpy()
        arrays[f"positions{i}"] = (batch.positions.numpy() if batch.positions is not None
                                   else np.zeros(0, bool))
    np.savez(path, **arrays)


@pytest.fixture(scope="module")
def trials():
    return {case: _trained(*case) for case in CASES}


@pytest.fixture(scope="module")
def exported(trials, tmp_path_factory):
    """Each case's trial, its exports, and the losses one budgetune-free subprocess measured."""
    root = tmp_path_factory.mktemp("export")
    jobs = {}
    for (model, kind), trial in trials.items():
        batches = root / f"{model}-{kind}.npz"
        _save_batches(trial, batches)
        job = {"batches": str(batches), "masked": trial.family.masked}
        folder = root / f"{model}-{kind}-hf"
        hf_model(trial.model, trial.family).save_pretrained(folder)
        jobs[f"{model}-{kind}-hf"] = {**job, "kind": "hf", "folder": str(folder)}
        for sparsity, bits in CELLS:
            folder = root / f"{model}-{kind}-{sparsity}-{bits}"
            save_compressed(trial.model, trial.family, sparsity, bits, folder)
            shutil.copy(DECODER, folder)  # as `budgetune export` does
            jobs[f"{model}-{kind}-{sparsity}-{bits}"] = {**job, "kind": "compressed",
                                                        "folder": str(folder)}
    (root / "jobs.json").write_text(json.dumps(jobs))
    (root / "loader.py").write_text(LOADER)
    run = subprocess.run([sys.executable, str(root / "loader.py"), str(root / "jobs.json")],
                         capture_output=True, text=True, cwd=root, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return root, trials, json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("model, kind", CASES)
def test_point_model_round_trip_keeps_the_loss_and_leaves_the_trial_alone(trials, tmp_path,
                                                                         model, kind):
    trial = trials[model, kind]
    before = trial.evaluate()
    path = tmp_path / "point.safetensors"
    save_point(point_model(trial.model, trial.family), path, {"budget": "5e9"})
    loaded = load_point(trial.schedule, trial.data.eot_id, path)
    assert trial.evaluate(loaded) == pytest.approx(before, abs=1e-6)
    assert safe_open(path, framework="pt").metadata()["budget"] == "5e9"
    if model == "gpt2":  # the tied head survives the file: one parameter, not a copy
        assert loaded.lm_head.weight is loaded.transformer.wte.weight
    blocks = trial.family.blocks(trial.model)
    assert is_shared(blocks) == (kind == "shared")
    assert all(prune.is_pruned(m) == (kind == "pruned") for m in block_linears(blocks))
    assert trial.evaluate() == before


@pytest.mark.parametrize("model, kind", CASES)
def test_hugging_face_folder_loads_without_budgetune_to_the_trials_loss(exported, model, kind):
    root, trials, losses = exported
    trial = trials[model, kind]
    assert trial.shared == (kind == "shared")  # the export unshared a copy, not the trial
    assert losses[f"{model}-{kind}-hf"] == pytest.approx(trial.evaluate(), abs=1e-4)
    config = json.loads((root / f"{model}-{kind}-hf" / "config.json").read_text())
    assert config["use_cache"] is True and "_attn_implementation" not in config
    assert config["architectures"] == [type(trial.model).__name__]


@pytest.mark.parametrize("sparsity, bits", CELLS)
@pytest.mark.parametrize("model, kind", CASES)
def test_compressed_artifact_decodes_without_budgetune_to_the_cells_loss(exported, model, kind,
                                                                       sparsity, bits):
    root, trials, losses = exported
    trial = trials[model, kind]
    loss = losses[f"{model}-{kind}-{sparsity}-{bits}"]
    assert loss == pytest.approx(trial.compressed_loss(sparsity, bits), abs=1e-3)


def _payload_bytes(path) -> int:
    """The file's size without safetensors' header (an 8-byte length, then JSON)."""
    with open(path, "rb") as f:
        return path.stat().st_size - 8 - int.from_bytes(f.read(8), "little")


@pytest.mark.parametrize("sparsity, bits", CELLS)
@pytest.mark.parametrize("model, kind", CASES)
def test_compressed_file_is_the_stated_size(exported, model, kind, sparsity, bits):
    root, trials, _ = exported
    trial = trials[model, kind]
    point = point_model(trial.model, trial.family)  # the stated size of every depth's blocks
    stated = compressed_bytes(point, trial.family, sparsity, bits)
    path = root / f"{model}-{kind}-{sparsity}-{bits}" / "compressed.safetensors"
    assert _payload_bytes(path) == stated  # the stated format, byte for byte
    assert path.stat().st_size == pytest.approx(stated, rel=0.05)


@pytest.mark.parametrize("sparsity, bits", [(0.9, 4), (0.0, 32)])
def test_the_default_spaces_smallest_model_compresses_to_its_stated_size(tmp_path, sparsity,
                                                                        bits):
    # Each dimension at its first (smallest) choice: d_model 16, 2 layers, T 128, V 1024.
    s = Schedule(**{k: v.values[0] if isinstance(v, Choice) else v
                    for k, v in DEFAULT.dims.items()})
    assert (s.d_model, s.n_layers, s.seq_len, s.vocab_size) == (16, 2, 128, 1024)
    family = FAMILIES["gpt2"]
    model = family.build(s, load_data("builtin", 1024).eot_id, "sdpa")
    path = save_compressed(model, family, sparsity, bits, tmp_path)
    stated = compressed_bytes(model, family, sparsity, bits)
    assert path.stat().st_size == pytest.approx(stated, rel=0.05)
    with safe_open(path, framework="np") as f:
        assert set(f.keys()) <= {"packed", "scales", "rest"}


@pytest.mark.parametrize("model", ["gpt2", "bert"])
def test_tokenizer_folder_gives_the_trials_token_ids(tmp_path, model):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from budgetune.trainables._corpus import BUILTIN, load_corpus
    from budgetune.trainables._tokenizer import cache_dir

    data = load_data("builtin", 1024)
    tokenizer_json = (cache_dir() / f"{load_corpus(BUILTIN).digest}-v1024"
                      / "tokenizer.json").read_text()
    save_tokenizer(tokenizer_json, model, tmp_path, model_max_length=4096)
    ours, theirs = Tokenizer.from_str(tokenizer_json), AutoTokenizer.from_pretrained(tmp_path)
    for text in load_corpus(BUILTIN).valid[:20] + ("Ünïcode  tabs\tand <|endoftext|> x",):
        assert theirs(text)["input_ids"] == ours.encode(text).ids
    assert theirs.eos_token_id == theirs.bos_token_id == data.eot_id
    assert theirs.model_max_length == 4096
    if model == "bert":
        assert theirs.mask_token_id == data.mask_id


def test_the_decoder_still_reads_format_1_exports(tmp_path):
    """Exports before whole-model compression (format 1): the block matrices at the one
    ``bits`` of the metadata, no per-matrix bits, the token matrix among the fp32 rest."""
    import torch
    from safetensors.numpy import save_file
    from transformers import GPT2Config, GPT2LMHeadModel

    from budgetune.trainables.load_compressed import load_compressed

    config = GPT2Config(n_embd=16, n_layer=2, n_head=2, n_positions=32, vocab_size=64,
                        architectures=["GPT2LMHeadModel"])
    config.save_pretrained(tmp_path)
    model = GPT2LMHeadModel(config)
    params = dict(model.named_parameters())
    convs = [f"{n}.weight" for n, m in model.named_modules() if type(m).__name__ == "Conv1D"]
    packed = np.concatenate([params[n].detach().T.contiguous().numpy().ravel().view(np.uint8)
                             for n in convs])  # stored as nn.Linear weights, fp32
    rest = np.concatenate([p.detach().numpy().ravel() for n, p in params.items()
                           if n not in convs])
    save_file({"packed": packed, "rest": rest}, str(tmp_path / "compressed.safetensors"),
              metadata={"format": "budgetune-compressed-1", "bits": "32", "sparsity": "0.0",
                        "matrices": json.dumps([[n, 0, 0] for n in convs])})
    loaded = dict(load_compressed(tmp_path).named_parameters())
    assert loaded.keys() == params.keys()
    for name, p in params.items():
        assert torch.equal(loaded[name], p.detach()), name
