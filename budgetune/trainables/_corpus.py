"""Text to train on: the built-in corpus or the user's own files, split by document.

The built-in corpus is the Python standard library's own source, written by people over thirty
years and present wherever Python is, so nothing is downloaded. Its test suites are left out
(they are large, repetitive and partly generated), which leaves about 13 MB of text.

A document is the unit of the train/validation split: a file of the standard library, a ``.txt``
file's paragraph block, a row of a ``.jsonl`` or ``.parquet`` file. The split hashes each
document's key, so it never depends on the order files are listed in.
"""

from __future__ import annotations

import hashlib
import json
import sysconfig
from dataclasses import dataclass
from pathlib import Path

BUILTIN = "builtin"
VALIDATION_ONE_IN = 20  # 5% of documents go to validation
_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "__pycache__", "dist-packages"}
_TEXT_SUFFIXES = (".txt", ".jsonl", ".parquet")


@dataclass(frozen=True)
class Corpus:
    """Documents split into train and validation, with a content hash for provenance."""

    name: str
    train: tuple[str, ...]
    valid: tuple[str, ...]
    digest: str  # sha256 of every document's key and text, 16 hex digits

    @property
    def n_chars(self) -> int:
        return sum(len(t) for t in self.train) + sum(len(t) for t in self.valid)


def load_corpus(source: str = BUILTIN) -> Corpus:
    """Load the built-in corpus, local files (``.txt``/``.jsonl``/``.parquet``, or a folder of
    them), or ``hf:NAME`` for a Hugging Face ``datasets`` name (needs the hub to be reachable)."""
    if source == BUILTIN:
        docs = _stdlib_documents()
    elif source.startswith("hf:"):
        docs = _hub_documents(source[3:])
    else:
        docs = _local_documents(Path(source))
    return _split(source, docs)


def _split(name: str, docs: list[tuple[str, str]]) -> Corpus:
    docs = [(k, t) for k, t in docs if t.strip()]
    if len(docs) < 2:
        raise ValueError(
            f"The corpus {name!r} has {len(docs)} non-empty document(s), but needs >= 2 "
            "(one for training, one for validation); give more text."
        )
    h = hashlib.sha256()
    train, valid = [], []
    for key, text in sorted(docs):
        h.update(key.encode() + b"\0" + text.encode("utf-8", "replace") + b"\0")
        in_valid = int(hashlib.sha1(key.encode()).hexdigest(), 16) % VALIDATION_ONE_IN == 0
        (valid if in_valid else train).append(text)
    if not valid:  # a tiny corpus can miss every validation bucket
        valid.append(train.pop())
    if not train:
        train.append(valid.pop())
    return Corpus(name, tuple(train), tuple(valid), h.hexdigest()[:16])


def _stdlib_documents() -> list[tuple[str, str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if _SKIP_DIRS.intersection(rel.parts[:-1]):
            continue
        docs.append((rel.as_posix(), path.read_text(encoding="utf-8", errors="replace")))
    return docs


def _local_documents(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        raise ValueError(
            f"The corpus path {str(path)!r} does not exist; give a .txt, .jsonl or .parquet "
            f"file, a folder of them, {BUILTIN!r}, or hf:NAME."
        )
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix in _TEXT_SUFFIXES
    )
    if not files or any(f.suffix not in _TEXT_SUFFIXES for f in files):
        raise ValueError(
            f"The corpus {str(path)!r} holds no .txt, .jsonl or .parquet file; "
            "give one of those or a folder of them."
        )
    docs = []
    for f in files:
        rel = f.name if f == path else f.relative_to(path).as_posix()
        docs.extend((f"{rel}#{i}", text) for i, text in enumerate(_read_texts(f)))
    return docs


def _read_texts(path: Path) -> list[str]:
    if path.suffix == ".txt":
        text = path.read_text(encoding="utf-8", errors="replace")
        return _paragraph_blocks(text)
    if path.suffix == ".jsonl":
        texts = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                    raise ValueError(
                        f"Line {n} of {str(path)!r} has no string field 'text'; each line of a "
                        ".jsonl corpus must be an object like {\"text\": \"...\"}."
                    )
                texts.append(row["text"])
        return texts
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if "text" not in table.column_names:
        raise ValueError(
            f"The Parquet file {str(path)!r} has no 'text' column (it has "
            f"{table.column_names}); name the text column 'text'."
        )
    return [t for t in table.column("text").to_pylist() if isinstance(t, str)]


def _paragraph_blocks(text: str, target_chars: int = 20_000) -> list[str]:
    """Cut a long text at blank lines into blocks of about ``target_chars``, so that even one
    file can be split into train and validation."""
    blocks, current, size = [], [], 0
    for para in text.split("\n\n"):
        current.append(para)
        size += len(para) + 2
        if size >= target_chars:
            blocks.append("\n\n".join(current))
            current, size = [], 0
    if current:
        blocks.append("\n\n".join(current))
    return blocks


def _hub_documents(name: str) -> list[tuple[str, str]]:
    try:
        import datasets  # optional: only for hub corpora
    except ImportError as e:
        raise ValueError(
            f"The corpus 'hf:{name}' needs the `datasets` package; pip install datasets."
        ) from e
    ds = datasets.load_dataset(name, split="train")
    if "text" not in ds.column_names:
        raise ValueError(f"The dataset {name!r} has no 'text' column; use one that has.")
    return [(f"{name}#{i}", t) for i, t in enumerate(ds["text"]) if isinstance(t, str)]
