"""The corpus a trial trains on, loaded and tokenized once per process."""

from __future__ import annotations

import functools

from budgetune.trainables._corpus import BUILTIN, load_corpus
from budgetune.trainables._tokenizer import TokenizedCorpus, tokenize_corpus


@functools.lru_cache(maxsize=4)
def load_data(corpus: str = BUILTIN, vocab_size: int = 4096) -> TokenizedCorpus:
    """Tokenized train/validation streams for ``corpus`` at ``vocab_size`` (disk-cached too)."""
    return tokenize_corpus(load_corpus(corpus), vocab_size)
