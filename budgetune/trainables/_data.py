"""The corpus a trial trains on, loaded and tokenized once per process.

Three kinds of source:

- ``builtin``, a ``.txt``/``.jsonl``/``.parquet`` file or folder, ``hf:NAME``: text, split by
  document and tokenized into the cache (``_corpus``, ``_tokenizer``);
- ``python`` (or ``python:DIGEST``, the name it resolves to): every installed Python source
  file, built once per machine into memory-mapped token files (``_pycorpus``);
- a folder holding ``train.bin``, ``val.bin`` and ``tokenizer.json``: the user's own tokens
  (``_byo``).
"""

from __future__ import annotations

import functools
from pathlib import Path

from budgetune.trainables._byo import is_token_dir, load_token_dir
from budgetune.trainables._corpus import BUILTIN, load_corpus
from budgetune.trainables._pycorpus import is_python, load_python, prepare_python
from budgetune.trainables._tokenizer import TokenizedCorpus, tokenize_corpus


@functools.lru_cache(maxsize=4)
def load_data(corpus: str = BUILTIN, vocab_size: int = 4096) -> TokenizedCorpus:
    """Tokenized train/validation streams for ``corpus`` at ``vocab_size`` (disk-cached too)."""
    if is_python(corpus):
        return load_python(corpus, vocab_size)
    if is_token_dir(corpus):
        return load_token_dir(corpus, vocab_size)
    return tokenize_corpus(load_corpus(corpus), vocab_size)


def require_mask_token(data: TokenizedCorpus, corpus: str, need: str) -> None:
    """Refuse a corpus whose tokenizer has no mask token for a masked LM: ``need`` says who
    needs it and the other way ("the masked LM needs; use --model gpt2")."""
    if data.mask_id is None:
        raise ValueError(f"The tokenizer of corpus {corpus!r} has no mask token (<|mask|>, "
                         f"<mask> or [MASK]), which {need}, or add one to the tokenizer.")


def prepare_corpus(corpus: str, vocab_sizes: list[int], masked: bool = False,
                   build: bool = True) -> str:
    """What a search's driver does before any trial starts: build the `python` corpus at each
    of ``vocab_sizes`` (once per machine) and check a token folder; returns the name its
    trials are given and ``search.json`` keeps: ``python:DIGEST`` for `python` (the trials
    open the cache by it, never listing the environment), an absolute path for a local file
    or folder (a resumed search may run from another directory), else ``corpus`` itself.
    ``masked``: some trial trains a masked LM, whose token folder then needs a mask token.
    ``build=False`` (``search --dry-run``): every check, but the `python` corpus is not built
    (minutes, on a machine without its cache) and ``corpus`` itself is returned for it; a
    ``python:DIGEST`` neither cached nor of this environment is refused as a run refuses it."""
    if is_python(corpus):
        name = corpus
        for v in vocab_sizes:
            name = prepare_python(name, v, build=build)
        return name
    if corpus == BUILTIN or corpus.startswith("hf:"):
        return corpus
    path = str(Path(corpus).resolve())
    if is_token_dir(path):
        for v in vocab_sizes:
            data = load_token_dir(path, v)
            if masked:  # as Trial refuses it, before anything runs
                require_mask_token(data, path, "the space's masked LM (bert) needs; search "
                                   "gpt2")
    elif not Path(path).exists():
        load_corpus(path)  # the one-line error of a missing path
    return path
