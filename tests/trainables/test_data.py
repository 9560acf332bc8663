"""Corpora, tokenizer cache, and the two batch objectives."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from budgetune.trainables import BatchSampler, load_corpus, load_data, mask_tokens, n_masked
from budgetune.trainables._batches import unigram_loss, validation_batches
from budgetune.trainables._tokenizer import tokenize_corpus


def test_builtin_corpus_is_the_stdlib_source_split_by_file():
    corpus = load_corpus("builtin")
    assert 8e6 < corpus.n_chars < 20e6
    assert 0.02 < len(corpus.valid) / (len(corpus.train) + len(corpus.valid)) < 0.1
    assert set(corpus.train).isdisjoint(corpus.valid)
    assert load_corpus("builtin").digest == corpus.digest


def _write_corpus(folder, kind):
    paras = [f"paragraph {i}: " + " ".join(f"word{(i * j) % 97}" for j in range(400))
             for i in range(60)]
    if kind == "txt":
        (folder / "a.txt").write_text("\n\n".join(paras))
    elif kind == "jsonl":
        (folder / "a.jsonl").write_text("\n".join(json.dumps({"text": p}) for p in paras))
    else:
        pq.write_table(pa.table({"text": paras}), folder / "a.parquet")
    return folder


@pytest.mark.parametrize("kind", ["txt", "jsonl", "parquet"])
def test_local_corpus_files_are_split_and_tokenized(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("BUDGETUNE_CACHE", str(tmp_path / "cache"))
    folder = _write_corpus(tmp_path, kind)
    corpus = load_corpus(str(folder))
    assert corpus.train and corpus.valid
    data = tokenize_corpus(corpus, 300)
    assert data.vocab_size <= 300 and len(data.train) > len(data.valid) > 0
    assert data.train.max() < data.vocab_size
    again = tokenize_corpus(corpus, 300)  # second call reads the cache
    assert again.corpus_id == data.corpus_id and np.array_equal(again.train, data.train)
    assert (tmp_path / "cache" / f"{corpus.digest}-v300" / "tokenizer.json").exists()


@pytest.mark.parametrize("content, message", [
    ('{"txt": "x"}', "no string field 'text'"),
])
def test_malformed_jsonl_is_refused_with_the_fix(tmp_path, content, message):
    (tmp_path / "bad.jsonl").write_text(content)
    with pytest.raises(ValueError, match=message):
        load_corpus(str(tmp_path / "bad.jsonl"))


def test_missing_corpus_path_is_refused(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_corpus(str(tmp_path / "nope"))


def test_builtin_tokenizer_has_the_vocabulary_asked_for():
    data = load_data("builtin", 4096)
    assert data.vocab_size == 4096 and data.train.dtype == np.uint16
    assert data.train.max() < 4096 and len(data.corpus_id) == 16


def test_masking_predicts_exactly_15_percent_with_80_10_10_corruption():
    g = torch.Generator().manual_seed(0)
    windows = torch.randint(2, 4096, (512, 128), generator=g)
    batch = mask_tokens(windows, 4096, 1, g)
    assert (batch.positions.sum(dim=1) == n_masked(128)).all()
    assert torch.equal(batch.targets, windows[batch.positions])
    chosen_inputs = batch.inputs[batch.positions]
    masked = (chosen_inputs == 1).float().mean().item()
    kept = (chosen_inputs == windows[batch.positions]).float().mean().item()
    assert masked == pytest.approx(0.8, abs=0.02)
    assert kept == pytest.approx(0.1 + 0.1 / 4096, abs=0.02)
    assert torch.equal(batch.inputs[~batch.positions], windows[~batch.positions])


def test_causal_batches_are_shifted_windows():
    tokens = np.arange(1000, dtype=np.uint16)
    batch = BatchSampler(tokens, 4, 16, False, 4096, 1, seed=0).next()
    assert torch.equal(batch.targets, batch.inputs + 1)


def test_validation_batches_are_fixed_and_unigram_loss_is_positive():
    data = load_data("builtin", 4096)
    a = validation_batches(data.valid, 8, 32, True, 4096, data.mask_id, 1024)
    b = validation_batches(data.valid, 8, 32, True, 4096, data.mask_id, 1024)
    assert all(torch.equal(x.inputs, y.inputs) for x, y in zip(a, b))
    loss = unigram_loss(data.train, a, 4096)
    assert 4.0 < loss < np.log(4096)
