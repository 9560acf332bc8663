"""A byte-level BPE tokenizer trained locally, and the corpus encoded with it, both cached.

Nothing is fetched: the tokenizer is trained with Hugging Face ``tokenizers`` on the corpus's
training split. The cache key is the corpus digest and the vocabulary size; files are written to
a temporary name and renamed, so trials starting together on one machine never see half a file.
Token ids are stored as ``.npy`` and loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from budgetune.trainables._corpus import Corpus

EOT = "<|endoftext|>"  # separates documents in the token stream
MASK = "<|mask|>"  # the masked-LM mask token
SPECIAL_TOKENS = [EOT, MASK]


def cache_dir() -> Path:
    root = os.environ.get("BUDGETUNE_CACHE") or Path.home() / ".cache" / "budgetune"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class TokenizedCorpus:
    """The corpus as two flat token streams, plus what the trainer needs to know about them."""

    train: np.ndarray  # (n_train_tokens,) uint16 or int32; memory-mapped for token files
    valid: np.ndarray  # (n_valid_tokens,)
    vocab_size: int
    eot_id: int
    mask_id: int | None  # None: the tokenizer has no mask token (a folder of own tokens)
    corpus_id: str  # hash of the corpus text and of the tokenizer: provenance for results
    # The training split's count of each id, (vocab_size,), where the corpus cached them (the
    # `python` corpus, token folders): a trial then need not count a large split itself.
    unigram_counts: np.ndarray | None = None
    tokenizer_path: str = ""  # its tokenizer.json, where one was read from a file


def tokenize_corpus(corpus: Corpus, vocab_size: int) -> TokenizedCorpus:
    """Train (or load) the tokenizer for ``corpus`` and return its encoded splits."""
    from tokenizers import Tokenizer

    folder = cache_dir() / f"{corpus.digest}-v{vocab_size}"
    folder.mkdir(parents=True, exist_ok=True)
    tok_path = folder / "tokenizer.json"
    if not tok_path.exists():
        text = _train_tokenizer(corpus, vocab_size).to_str()
        write_atomically(tok_path, lambda tmp: Path(tmp).write_text(text))
    tok_json = tok_path.read_text()
    tokenizer = Tokenizer.from_str(tok_json)
    eot, mask = tokenizer.token_to_id(EOT), tokenizer.token_to_id(MASK)
    splits = {}
    for split in ("train", "valid"):
        path = folder / f"{split}.npy"
        if not path.exists():
            write_atomically(path, lambda tmp, s=split: _save_npy(
                tmp, _encode(tokenizer, getattr(corpus, s), eot)))
        splits[split] = np.load(path, allow_pickle=False)
    _, corpus_id = cached_tokenizer(corpus, vocab_size)
    return TokenizedCorpus(splits["train"], splits["valid"], tokenizer.get_vocab_size(),
                           eot, mask, corpus_id, tokenizer_path=str(tok_path))


def cached_tokenizer(corpus: Corpus, vocab_size: int) -> tuple[str, str]:
    """(tokenizer.json's text, corpus_id) of the tokenizer ``tokenize_corpus`` trained for
    ``corpus`` at ``vocab_size``, from the cache alone: never trained here."""
    path = cache_dir() / f"{corpus.digest}-v{vocab_size}" / "tokenizer.json"
    if not path.is_file():
        raise ValueError(f"The tokenizer cache {str(path)!r} is missing (BUDGETUNE_CACHE or "
                         "~/.cache/budgetune on the machine that trained); add --retrain to "
                         "train the tokenizer and the model again.")
    text = path.read_text()
    return text, hashlib.sha256((corpus.digest + text).encode()).hexdigest()[:16]


def _train_tokenizer(corpus: Corpus, vocab_size: int):
    return train_tokenizer(corpus.train, vocab_size)


def train_tokenizer(texts, vocab_size: int):
    """A byte-level BPE tokenizer of ``vocab_size`` ids trained on ``texts`` (a sequence)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tokenizer


def _encode(tokenizer, texts: tuple[str, ...], eot: int) -> np.ndarray:
    dtype = np.uint16 if tokenizer.get_vocab_size() <= 65536 else np.int32
    ids: list[int] = []
    for enc in tokenizer.encode_batch(list(texts)):
        ids.extend(enc.ids)
        ids.append(eot)
    return np.asarray(ids, dtype=dtype)


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: given a name, np.save would append .npy
        np.save(f, array, allow_pickle=False)


def write_atomically(path: Path, write) -> None:
    """``write(temporary name)`` next to ``path``, then rename it: readers never see half a
    file. Readable by all, as an ordinary new file (mkstemp's are the owner's alone)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
