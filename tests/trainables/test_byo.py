"""Bring your own tokens: a folder of train.bin, val.bin and tokenizer.json, through the CLI."""

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from budgetune.cli import main
from budgetune.flops import flops_per_step
from budgetune.spaces import Schedule
from budgetune.trainables._tokenizer import train_tokenizer

VOCAB = 300
SCHEDULE = ["--d-model", "16", "--n-layers", "1", "--n-heads", "2", "--seq-len", "16",
            "--batch-size", "4", "--vocab-size", str(VOCAB)]
BUDGET = 12 * flops_per_step(Schedule(d_model=16, n_layers=1, n_heads=2, seq_len=16,
                                      batch_size=4, vocab_size=VOCAB))


def own_tokens(folder: Path, dtype: str = "uint16", vocab_size: int = VOCAB) -> Path:
    """What a user who tokenized their data brings: shards and the tokenizer that made them
    (trained here, on a few standard-library modules)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = [(stdlib / name).read_text() for name in ("json/decoder.py", "json/encoder.py",
                                                       "textwrap.py", "shlex.py")]
    tokenizer = train_tokenizer(texts, vocab_size)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    eot = tokenizer.token_to_id("<|endoftext|>")
    ids = [np.array([*e.ids, eot]) for e in tokenizer.encode_batch(texts)]
    np.concatenate(ids[:3]).astype(dtype).tofile(folder / "train.bin")
    ids[3].astype(dtype).tofile(folder / "val.bin")
    if dtype != "uint16":
        (folder / "meta.json").write_text(json.dumps({"dtype": dtype}))
    return folder


TRAIN = ["train", "--json", *SCHEDULE, "--budget", str(BUDGET), "--n-reports", "2",
         "--eval-tokens", "256"]


def _check_reports(reports: list[dict]) -> None:
    assert [r["step"] for r in reports] == [6, 12]
    assert all(np.isfinite(r["val_loss"]) and r["val_loss"] < np.log(VOCAB) + 1 for r in reports)
    assert 3.0 < reports[0]["unigram_loss"] < np.log(VOCAB)
    corpus_id = reports[0]["corpus_id"]
    assert len(corpus_id) == 16 and {r["corpus_id"] for r in reports} == {corpus_id}


def test_own_uint16_shards_train_through_the_cli(tmp_path):
    folder = own_tokens(tmp_path / "tokens")
    env = {**os.environ, "BUDGETUNE_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-m", "budgetune.cli", *TRAIN, "--corpus", str(folder),
                          "--threads", "1"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    _check_reports([json.loads(line) for line in out.stdout.splitlines()])


def test_own_uint32_shards_train_through_the_cli_in_process(tmp_path, monkeypatch, capsys):
    """The same command, run by ``budgetune.cli.main`` here: a second interpreter start-up
    would double this test's time."""
    monkeypatch.setenv("BUDGETUNE_CACHE", str(tmp_path / "cache"))
    folder = own_tokens(tmp_path / "tokens", "uint32")
    assert main([*TRAIN, "--corpus", str(folder)]) == 0
    _check_reports([json.loads(line) for line in capsys.readouterr().out.splitlines()])


def _shorten(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])


def _out_of_vocab(path: Path) -> None:
    ids = np.fromfile(path, dtype=np.uint16)
    ids[5] = VOCAB
    ids.tofile(path)


def _as_uint32_unsaid(folder: Path) -> None:
    for name in ("train.bin", "val.bin"):
        np.fromfile(folder / name, dtype=np.uint16).astype(np.uint32).tofile(folder / name)


BAD = {
    "missing val.bin": (lambda f: (f / "val.bin").unlink(), "has no val.bin"),
    "odd byte length": (lambda f: _shorten(f / "train.bin"), "not a whole number of uint16"),
    "id out of vocabulary": (lambda f: _out_of_vocab(f / "val.bin"), "holds token id 300"),
    "unknown dtype hint": (lambda f: (f / "meta.json").write_text('{"dtype": "int64"}'),
                           "`dtype` .* is 'int64', but must be one of"),
    "uint32 read as uint16": (_as_uint32_unsaid, "looks like uint32"),
    "empty val.bin": (lambda f: (f / "val.bin").write_bytes(b""), "val.bin is empty"),
    "vocabulary too small": (None, "must be >= 300"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_token_shards_are_refused_in_one_line(tmp_path, monkeypatch, capsys, case):
    monkeypatch.setenv("BUDGETUNE_CACHE", str(tmp_path / "cache"))
    folder = own_tokens(tmp_path / "tokens")
    spoil, message = BAD[case]
    args = ["train", "--corpus", str(folder), "--json", *SCHEDULE, "--budget", str(BUDGET)]
    if spoil is None:
        args[args.index("--vocab-size") + 1] = "299"
    else:
        spoil(folder)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("budgetune: error: "), err
    assert "Traceback" not in err and re.search(message, err), err


def test_an_export_names_the_special_tokens_of_the_users_own_tokenizer(tmp_path):
    """A user's tokenizer may end documents with </s> and mask with <mask>: the exported
    Hugging Face tokenizer takes those (by the ids the model was trained with), and adds no
    token the model has no row for."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer

    from budgetune.trainables import save_tokenizer

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["</s>", "<mask>"])
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    tokenizer.train_from_iterator([(stdlib / "textwrap.py").read_text()], trainer)
    eos, mask = tokenizer.token_to_id("</s>"), tokenizer.token_to_id("<mask>")
    save_tokenizer(tokenizer.to_str(), "bert", tmp_path, eot_id=eos, mask_id=mask)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert (loaded.eos_token, loaded.eos_token_id) == ("</s>", eos)
    assert (loaded.mask_token, loaded.mask_token_id) == ("<mask>", mask)
    assert loaded.pad_token_id == eos and len(loaded) == tokenizer.get_vocab_size()
