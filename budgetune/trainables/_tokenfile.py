"""Flat token files: a token stream as raw little-endian uint16 or uint32, as nanoGPT's
``train.bin``, opened memory-mapped.

A mapped file is read by the page cache once per machine, however many trials read it: every
trial on a node shares the same physical pages instead of loading its own copy. Training
windows are gathered from it directly (``_batches``), so a trial's memory does not grow with the
corpus. Files are written to a temporary name and renamed (``write_atomically``), and a folder
of them is complete only once its ``meta.json`` exists, written last.

uint16 holds token ids below 65536, the largest vocabulary a ``Schedule`` allows; uint32 is read
too, for users who bring their own tokens (``_byo``).
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from budgetune.trainables._tokenizer import write_atomically

TOKEN_DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}
META_FILE = "meta.json"  # written last: a folder without it is incomplete
COUNTS_FILE = "unigram.npy"  # the training split's token counts, (vocab_size,) int64
_CHUNK = 1 << 24  # tokens per chunk when a file is scanned


def dtype_for(vocab_size: int) -> str:
    """The narrowest dtype that holds every id of a vocabulary."""
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


def write_tokens(path: Path, chunks: Iterable[np.ndarray], dtype: str) -> int:
    """Write the concatenated ``chunks`` to ``path`` (atomically); returns the token count."""
    count = 0

    def write(tmp: str) -> None:
        nonlocal count
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(np.ascontiguousarray(chunk, dtype=TOKEN_DTYPES[dtype]).tobytes())
                count += len(chunk)

    write_atomically(path, write)
    return count


def open_tokens(path: Path, dtype: str) -> np.ndarray:
    """The tokens of ``path``, memory-mapped read-only (an empty file: an empty array)."""
    if Path(path).stat().st_size == 0:
        return np.zeros(0, dtype=TOKEN_DTYPES[dtype])
    return np.memmap(path, dtype=TOKEN_DTYPES[dtype], mode="r")


def chunks_of(tokens: np.ndarray) -> Iterator[np.ndarray]:
    """``tokens`` in slices of a few tens of MB: scans that never hold a whole file."""
    for start in range(0, len(tokens), _CHUNK):
        yield np.asarray(tokens[start:start + _CHUNK])


def count_tokens(tokens: np.ndarray, vocab_size: int) -> np.ndarray:
    """How often each id occurs, (vocab_size,) int64, in one pass of chunks."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for chunk in chunks_of(tokens):
        counts += np.bincount(chunk, minlength=vocab_size)[:vocab_size]
    return counts


def write_meta(folder: Path, meta: dict) -> None:
    write_atomically(folder / META_FILE,
                     lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=1)))


def read_meta(folder: Path) -> dict | None:
    """A complete folder's meta.json, or None while it is missing (not built yet)."""
    path = folder / META_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def save_counts(folder: Path, counts: np.ndarray) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: given a name, np.save would append .npy
            np.save(f, counts, allow_pickle=False)

    write_atomically(folder / COUNTS_FILE, write)


def load_counts(folder: Path) -> np.ndarray:
    return np.load(folder / COUNTS_FILE, allow_pickle=False)


@contextmanager
def cache_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (a ``.lock`` file in the cache), held by one process of a
    machine at a time: the first builds, the others wait and then find the result built."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
