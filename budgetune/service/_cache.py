"""Answers cached by the tables' version, so a repeated query costs a directory listing.

A search writes its tables as immutable part files, one per flush, renamed into place
(``budgetune.results``): the set of part files *is* the tables' version. ``tables_version``
hashes each part's name, size and mtime (and each ``search.json``); any flush, a new search or
a removed part changes it, and the cache then drops every answer it holds. The version is taken
before an answer is computed, so an answer computed while a flush lands is filed under the older
version and recomputed on the next request.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from budgetune.results import SPEC_FILE, TABLES, search_folders

MAX_ENTRIES = 256  # answers kept per version (each query string is one entry)


def _entries(folder: Path):
    for table in TABLES:
        try:
            with os.scandir(folder / table) as it:
                for entry in it:
                    if entry.name.startswith("part-") and entry.name.endswith(".parquet"):
                        st = entry.stat()
                        yield f"{folder.name}/{table}/{entry.name}", st.st_size, st.st_mtime_ns
        except FileNotFoundError:
            continue
    spec = folder / SPEC_FILE
    if spec.is_file():
        st = spec.stat()
        yield f"{folder.name}/{SPEC_FILE}", st.st_size, st.st_mtime_ns


def tables_version(root: str | os.PathLike) -> str:
    """A short hash of every part file's (path, size, mtime_ns) under ``root``."""
    digest = hashlib.sha256()
    for folder in search_folders(root):
        for name, size, mtime in sorted(_entries(folder)):
            digest.update(f"{name}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()[:16]


class AnswerCache:
    """``get(version, key, compute)``: the cached value, or ``compute()``'s, filed under key.

    One lock per key: concurrent requests for one answer compute it once. Errors are not cached.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self._version: str | None = None
        self._values: dict[tuple, object] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._retired: set[str] = set()  # a request that began before a flush keeps these
        self._guard = threading.Lock()

    def _lock_for(self, version: str, key: tuple) -> threading.Lock:
        with self._guard:
            if version != self._version and version not in self._retired:
                if self._version is not None:
                    self._retired.add(self._version)
                self._version, self._values, self._locks = version, {}, {}
            if version != self._version:  # an older version: compute, do not file
                return threading.Lock()
            return self._locks.setdefault(key, threading.Lock())

    def get(self, version: str, key: tuple, compute: Callable[[], object]) -> object:
        with self._lock_for(version, key):
            with self._guard:
                if version == self._version and key in self._values:
                    return self._values[key]
            value = compute()
            with self._guard:
                if version == self._version and len(self._values) < self.max_entries:
                    self._values[key] = value
            return value
