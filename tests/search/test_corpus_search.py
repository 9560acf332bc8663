"""A search on the user's own tokens: search.json keeps the corpus, every trial trains on it."""

import json

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


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "nope", "does not exist"),
    (lambda d: own_tokens(d / "tokens", vocab_size=300),
     "`vocab_size` is 258, but must be >= 300"),
])
def test_a_bad_corpus_is_refused_before_the_search_writes_anything(tmp_path, monkeypatch, make,
                                                                    message):
    monkeypatch.setenv("BUDGETUNE_CACHE", str(tmp_path / "cache"))
    code, stderr = _cli("search", "--space", "tiny", "--corpus", str(make(tmp_path)),
                        "--results", str(tmp_path / "results"))
    _assert_one_line_refusal(code, stderr)
    assert message in stderr and not (tmp_path / "results").exists()
