"""The `python` corpus: every installed Python source file (``_pyfiles``), tokenized once per
machine into memory-mapped token files in the cache.

The expensive work (finding and hashing the files, training the tokenizer, encoding 250 MB,
counting unigrams) happens once, under a lock in the cache, in whichever process comes first: a
search's driver, before any trial starts. It is keyed by the files' digest and the vocabulary
size; ``python:DIGEST`` names it, and a trial given that name opens the cached files by it
without listing the environment again (a search passes its trials that name, and
``search.json`` keeps it, so ``--resume`` and ``export`` read the same tokens).

1. The tokenizer is trained on a bounded sample of the training split: whole files in order of
   their content hash (a deterministic sample across every package, not the alphabetically
   first ones) up to ``TOKENIZER_SAMPLE_BYTES``. On installed Python, held-out characters per
   token moved 0.1% when a 4,096-id tokenizer's sample grew from 10 to 20 MB; 32 MB leaves a
   margin for larger vocabularies and trained in 37 s on a busy 2-core machine, against 6.4
   minutes for encoding the 257 MB (BENCHMARKS.md).
2. Each split is encoded with ``tokenizers``' own parallel ``encode_batch_fast`` (Rust threads,
   not a Python loop per file), ``ENCODE_BATCH_BYTES`` at a time, each file followed by the
   end-of-text token, and streamed to ``train.bin`` / ``val.bin``; the training split's unigram
   counts are taken on the way.
3. ``meta.json`` is written last: its presence means the folder is complete.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from budgetune.trainables._pyfiles import PythonFiles, SourceFile, discover
from budgetune.trainables._tokenfile import (
    cache_lock,
    dtype_for,
    load_counts,
    open_tokens,
    read_meta,
    save_counts,
    write_meta,
    write_tokens,
)
from budgetune.trainables._tokenizer import (
    EOT,
    MASK,
    TokenizedCorpus,
    cache_dir,
    train_tokenizer,
    write_atomically,
)

PYTHON = "python"
TOKENIZER_SAMPLE_BYTES = 32_000_000  # see 1. above
ENCODE_BATCH_BYTES = 8_000_000  # text per encode_batch_fast call: enough work for every thread


def is_python(source: str) -> bool:
    return source == PYTHON or source.startswith(PYTHON + ":")


def corpus_folder(digest: str, vocab_size: int) -> Path:
    return cache_dir() / f"{PYTHON}-{digest}-v{vocab_size}"


def prepare_python(source: str, vocab_size: int, roots: dict | None = None,
                   build: bool = True) -> str:
    """Build the corpus ``source`` names at ``vocab_size`` unless the cache has it; returns its
    name, ``python:DIGEST``. Given a digest whose files are cached, nothing is listed.
    ``build=False`` (a dry run): the same refusal of a digest that is neither cached nor this
    environment's, but nothing built, and ``source`` returned."""
    digest = source.partition(":")[2]
    if digest and read_meta(corpus_folder(digest, vocab_size)) is not None:
        return source
    if not build and not digest:
        return source
    files = discover(roots)
    if digest and files.digest != digest:
        raise ValueError(f"The corpus {source!r} is not in this machine's cache, and the Python "
                         f"files installed here hash to {files.digest}: another environment. "
                         "Run where the search ran, or start a new search with --corpus python.")
    if not build:
        return source
    build_python_corpus(files, vocab_size)
    return f"{PYTHON}:{files.digest}"


def load_python(source: str, vocab_size: int, roots: dict | None = None) -> TokenizedCorpus:
    """The `python` corpus (``python`` or ``python:DIGEST``), built first if need be."""
    name = prepare_python(source, vocab_size, roots)
    return open_python(name.partition(":")[2], vocab_size)


def open_python(digest: str, vocab_size: int) -> TokenizedCorpus:
    """The cached token files of a built corpus, memory-mapped, with its cached counts."""
    folder = corpus_folder(digest, vocab_size)
    meta = read_meta(folder)
    assert meta is not None, f"{folder} is not built"
    return TokenizedCorpus(
        open_tokens(folder / "train.bin", meta["dtype"]),
        open_tokens(folder / "val.bin", meta["dtype"]), meta["vocab_size"], meta["eot_id"],
        meta["mask_id"], meta["corpus_id"], unigram_counts=load_counts(folder),
        tokenizer_path=str(folder / "tokenizer.json"))


def build_python_corpus(files: PythonFiles, vocab_size: int, progress: bool = True) -> dict:
    """Train the tokenizer, encode both splits and count unigrams into the cache, once per
    machine (under a lock); returns the folder's meta.json, with what each step took."""
    folder = corpus_folder(files.digest, vocab_size)
    with cache_lock(folder.parent / f"{folder.name}.lock"):
        meta = read_meta(folder)
        if meta is not None:  # another process built it while this one waited
            return meta
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        sample = _tokenizer_sample(files.train)
        _say(progress, f"budgetune: the python corpus ({len(files.files):,} files, "
             f"{files.n_bytes / 1e6:.0f} MB): training a {vocab_size}-id tokenizer on "
             f"{sum(f.size for f in sample) / 1e6:.0f} MB of it")
        tokenizer = train_tokenizer([_read(f) for f in sample], vocab_size)
        text = tokenizer.to_str()
        write_atomically(folder / "tokenizer.json", lambda tmp: Path(tmp).write_text(text))
        t1 = time.perf_counter()
        eot, vocab = tokenizer.token_to_id(EOT), tokenizer.get_vocab_size()
        dtype = dtype_for(vocab)
        counts = np.zeros(vocab, dtype=np.int64)
        bar = _bar(progress, files.n_bytes)
        n_train = write_tokens(folder / "train.bin",
                               _encoded(tokenizer, files.train, eot, bar, counts), dtype)
        n_valid = write_tokens(folder / "val.bin",
                               _encoded(tokenizer, files.valid, eot, bar, None), dtype)
        bar.close()
        save_counts(folder, counts)
        meta = {
            "digest": files.digest, "vocab_size": vocab, "dtype": dtype, "eot_id": eot,
            "mask_id": tokenizer.token_to_id(MASK),
            "corpus_id": hashlib.sha256((files.digest + text).encode()).hexdigest()[:16],
            "files": len(files.files), "files_listed": files.n_listed, "bytes": files.n_bytes,
            "train_tokens": n_train, "valid_tokens": n_valid,
            "tokenizer_sample_bytes": sum(f.size for f in sample),
            "tokenizer_s": round(t1 - t0, 2), "encode_s": round(time.perf_counter() - t1, 2),
        }
        write_meta(folder, meta)
        return meta


def _tokenizer_sample(train: tuple[SourceFile, ...]) -> list[SourceFile]:
    sample, size = [], 0
    for f in sorted(train, key=lambda f: f.sha256):
        if size >= TOKENIZER_SAMPLE_BYTES:
            break
        sample.append(f)
        size += f.size
    return sample


def _encoded(tokenizer, files: tuple[SourceFile, ...], eot: int, bar,
             counts: np.ndarray | None) -> Iterator[np.ndarray]:
    """The token stream of ``files``, one batch of about ENCODE_BATCH_BYTES at a time."""
    batch: list[SourceFile] = []
    size = 0
    for i, f in enumerate(files):
        batch.append(f)
        size += f.size
        if size >= ENCODE_BATCH_BYTES or i == len(files) - 1:
            ids: list[int] = []
            for enc in tokenizer.encode_batch_fast([_read(b) for b in batch]):
                ids += enc.ids
                ids.append(eot)
            tokens = np.asarray(ids, dtype=np.int64)
            if counts is not None:
                counts += np.bincount(tokens, minlength=len(counts))
            bar.update(size)
            batch, size = [], 0
            yield tokens


def _read(f: SourceFile) -> str:
    data = Path(f.path).read_bytes()
    if hashlib.sha256(data).hexdigest() != f.sha256:
        raise ValueError(f"The file {f.path!r} changed while the python corpus was being "
                         "built (a package was installed meanwhile?); run again.")
    return data.decode("utf-8", errors="replace")


def _bar(progress: bool, total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc="budgetune: tokenizing",
                file=sys.stderr, mininterval=5.0, disable=not progress)


def _say(progress: bool, line: str) -> None:
    if progress:
        print(line, file=sys.stderr, flush=True)
