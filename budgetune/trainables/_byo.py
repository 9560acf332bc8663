"""Bring your own tokens: a folder holding ``train.bin`` and ``val.bin`` (flat token ids, as
nanoGPT's ``prepare.py`` writes them) and the ``tokenizer.json`` that made them.

The ids are uint16 unless an optional ``meta.json`` says ``{"dtype": "uint32"}``. Every way a
folder can be wrong is refused in one line that names the file and the fix: a file missing, a
length that is not a whole number of tokens, an empty split, an id the tokenizer does not have,
a dtype hint the data contradicts. Checking reads every token once per machine; the outcome,
the ``corpus_id`` (a hash of the three files and the dtype) and the training split's unigram
counts are then cached, keyed by the files' paths, sizes and modification times, so a trial
opens a checked folder memory-mapped without reading it through again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from budgetune.trainables._tokenfile import (
    META_FILE,
    TOKEN_DTYPES,
    cache_lock,
    chunks_of,
    count_tokens,
    load_counts,
    open_tokens,
    read_meta,
    save_counts,
    write_meta,
)
from budgetune.trainables._tokenizer import EOT, MASK, TokenizedCorpus, cache_dir

SHARDS = ("train.bin", "val.bin")
FILES = (*SHARDS, "tokenizer.json")
_EOT_NAMES = (EOT, "</s>", "<eos>", "[SEP]")  # the first the tokenizer has separates documents
_MASK_NAMES = (MASK, "<mask>", "[MASK]")  # the masked LM's mask token (bert only)
_SNIFF = 1 << 20  # tokens read to tell uint32 data from uint16


def is_token_dir(source: str) -> bool:
    """A folder that holds any of ``train.bin``, ``val.bin``, ``tokenizer.json``: what it
    lacks is then an error, not a reason to read it as a folder of text."""
    path = Path(source)
    return path.is_dir() and any((path / name).exists() for name in FILES)


def load_token_dir(source: str, vocab_size: int) -> TokenizedCorpus:
    """The folder's shards, memory-mapped and checked, for a model of ``vocab_size`` ids."""
    folder = Path(source).resolve()
    for name in FILES:
        if not (folder / name).is_file():
            raise ValueError(f"The token folder {str(folder)!r} has no {name}; it must hold "
                             "train.bin, val.bin (uint16 ids, or uint32 with meta.json "
                             "{\"dtype\": \"uint32\"}) and the tokenizer.json that made them.")
    dtype = _dtype_hint(folder)
    tokenizer = _tokenizer(folder)
    vocab = tokenizer.get_vocab_size()
    if vocab > vocab_size:
        raise ValueError(f"The value of `vocab_size` is {vocab_size}, but must be >= {vocab}, "
                         f"the ids of {folder / 'tokenizer.json'}; pass --vocab-size {vocab} to "
                         f"train, or search a space file with `vocab_size: {vocab}`.")
    if dtype == "uint16" and vocab > 1 << 16:
        raise ValueError(f"The tokenizer of {str(folder)!r} has {vocab} ids, but uint16 shards "
                         "hold ids below 65536; write them as uint32 and add meta.json "
                         "{\"dtype\": \"uint32\"}.")
    shards = [_open(folder / name, dtype) for name in SHARDS]
    memo = cache_dir() / f"tokens-{_stamp(folder, dtype)}"
    meta = read_meta(memo)
    if meta is None:
        with cache_lock(memo.parent / f"{memo.name}.lock"):
            meta = read_meta(memo) or _check(folder, shards, dtype, vocab, memo)
    return TokenizedCorpus(
        shards[0], shards[1], vocab, _first_id(tokenizer, _EOT_NAMES, 0),
        _first_id(tokenizer, _MASK_NAMES, None), meta["corpus_id"],
        unigram_counts=load_counts(memo), tokenizer_path=str(folder / "tokenizer.json"))


def _dtype_hint(folder: Path) -> str:
    path = folder / META_FILE
    if not path.is_file():
        return "uint16"  # nanoGPT's
    try:
        hint = json.loads(path.read_text()).get("dtype", "uint16")
    except (ValueError, AttributeError):
        raise ValueError(f"{path} is not a JSON object like {{\"dtype\": \"uint32\"}}; fix it "
                         "or remove it (uint16 is assumed).") from None
    if hint not in TOKEN_DTYPES:
        raise ValueError(f"The value of `dtype` in {path} is {hint!r}, but must be one of "
                         f"{list(TOKEN_DTYPES)}: the type the ids were written as.")
    return hint


def _tokenizer(folder: Path):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as e:  # tokenizers raises its own Exception type for any bad file
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{folder / 'tokenizer.json'} is not a tokenizer `tokenizers` can "
                         f"read ({first}); save it with Tokenizer.save.") from None


def _open(path: Path, dtype: str) -> np.ndarray:
    size, width = path.stat().st_size, TOKEN_DTYPES[dtype].itemsize
    if size == 0:
        raise ValueError(f"{path} is empty; every split needs tokens (the validation split "
                         "scores every report).")
    if size % width:
        raise ValueError(f"{path} holds {size} bytes, not a whole number of {dtype} ids "
                         f"({width} bytes each); is it truncated, or of another dtype "
                         "(meta.json {\"dtype\": ...})?")
    return open_tokens(path, dtype)


def _stamp(folder: Path, dtype: str) -> str:
    """What the cached check is keyed by: each file's path, size and modification time."""
    parts = [dtype]
    for name in FILES:
        st = (folder / name).stat()
        parts.append(f"{folder / name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _check(folder: Path, shards: list[np.ndarray], dtype: str, vocab: int, memo: Path) -> dict:
    """Read every token once: refuse an id out of the vocabulary or uint32 data read as uint16;
    hash the files; count the training split's unigrams. Cached in ``memo``."""
    h = hashlib.sha256(dtype.encode())
    for name, tokens in zip(SHARDS, shards):
        path = folder / name
        head = np.asarray(tokens[:_SNIFF])
        if dtype == "uint16" and len(head) >= 16 and not head[1::2].any() and head[::2].any():
            raise ValueError(f"Every second uint16 id of {path} is 0: it looks like uint32 "
                             "data; add meta.json {\"dtype\": \"uint32\"}.")
        for chunk in chunks_of(tokens):
            if chunk.max() >= vocab:
                raise ValueError(f"{path} holds token id {int(chunk.max())}, but "
                                 f"{folder / 'tokenizer.json'} has {vocab} ids (0..{vocab - 1}); "
                                 "were the shards made with another tokenizer, or as another "
                                 "dtype (meta.json {\"dtype\": ...})?")
        with open(path, "rb") as f:
            h.update(hashlib.file_digest(f, "sha256").digest())
    h.update((folder / "tokenizer.json").read_bytes())
    memo.mkdir(parents=True, exist_ok=True)
    save_counts(memo, count_tokens(shards[0], vocab))
    meta = {"folder": str(folder), "dtype": dtype, "vocab_size": vocab,
            "corpus_id": h.hexdigest()[:16],
            "train_tokens": len(shards[0]), "valid_tokens": len(shards[1])}
    write_meta(memo, meta)
    return meta


def _first_id(tokenizer, names: tuple[str, ...], default):
    for name in names:
        token_id = tokenizer.token_to_id(name)
        if token_id is not None:
            return token_id
    return default
