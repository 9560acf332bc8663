"""A search on the user's own tokens: search.json keeps the corpus, every trial trains on it."""

import json
import sysconfig
from pathlib import Path

import pytest

from budgetune.results import SPEC_FILE, read_table
from budgetune.search import SearchSpec, run_search
from budgetune.search._spec import default_budgets
from budgetune.trainables import load_token_dir
from tests.test_bad_input import _assert_one_line_refusal, _cli
from tests.trainables.test_byo import own_tokens


@pytest.mark.slow  # a real Ray instance; the CLI's own tests of the folder are in the fast suite
def test_search_on_own_tokens_keeps_the_corpus_for_resume_and_export(tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    own_tokens(tmp_path / "tokens", vocab_size=258)  # the `tiny` space's vocabulary
    spec = SearchSpec(space="tiny", budgets=default_budgets("tiny")[:1], num_samples=2,
                      max_mb=None, results="results", name="own", eval_tokens=256,
                      corpus="tokens", keep_models=0)
    run_search(spec, progress=lambda line: None)
    saved = json.loads((spec.folder() / SPEC_FILE).read_text())
    assert saved["corpus"] == str(tmp_path / "tokens")  # absolute: --resume runs anywhere
    reports = read_table(spec.folder(), "reports")
    assert len(reports) and set(reports["corpus_id"]) == {
        load_token_dir(str(tmp_path / "tokens"), 258).corpus_id}


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
@pytest.mark.parametrize("make, message", [
    (lambda d: d / "nope", "does not exist"),
    (lambda d: own_tokens(d / "tokens", vocab_size=300),
     "`vocab_size` is 258, but must be >= 300"),
])
def test_a_bad_corpus_is_refused_before_the_search_writes_anything(tmp_path, monkeypatch, make,
                                                                    message, dry_run):
    monkeypatch.setenv("BUDGETUNE_CACHE", str(tmp_path / "cache"))
    code, stderr = _cli("search", "--space", "tiny", "--corpus", str(make(tmp_path)),
                        "--results", str(tmp_path / "results"), *dry_run)
    _assert_one_line_refusal(code, stderr)
    assert message in stderr and not (tmp_path / "results").exists()


def test_a_dry_run_refuses_a_python_corpus_of_another_environment_without_building(
        tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETUNE_CACHE", str(tmp_path / "cache"))
    code, stderr = _cli("search", "--space", "tiny", "--corpus", "python:0123456789abcdef",
                        "--results", str(tmp_path / "results"), "--dry-run")
    _assert_one_line_refusal(code, stderr)
    assert "not in this machine's cache" in stderr and not (tmp_path / "results").exists()
    assert not any((tmp_path / "cache").glob("python-*"))  # nothing built


def test_a_masked_lm_space_on_tokens_without_a_mask_token_is_refused_before_ray(tmp_path,
                                                                              monkeypatch):
    """Every bert trial would fail on it: refused in one line, nothing written."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    monkeypatch.setenv("BUDGETUNE_CACHE", str(tmp_path / "cache"))
    folder = own_tokens(tmp_path / "tokens", vocab_size=300)
    tokenizer = Tokenizer(models.BPE())  # the same shards, a tokenizer with no mask token
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    tokenizer.train_from_iterator([(stdlib / "textwrap.py").read_text()], trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"]))
    assert tokenizer.get_vocab_size() == 300
    tokenizer.save(str(folder / "tokenizer.json"))
    space = tmp_path / "bert.yaml"
    space.write_text("model: bert\nd_model: 16\nn_layers: 1\nn_heads: 2\nseq_len: 16\n"
                     "batch_size: 4\nvocab_size: 300\n")
    code, stderr = _cli("search", "--space", str(space), "--corpus", str(folder), "--budget",
                        "1e9", "--results", str(tmp_path / "results"))
    _assert_one_line_refusal(code, stderr)
    assert "no mask token" in stderr and not (tmp_path / "results").exists()
