"""The `python` corpus: discovery, tokenization, a second load, and trial start-up against the
built-in corpus. Prints one JSON object.

1. discovery: list, read and hash every installed Python file (``discover``);
2. the build, in a fresh cache (``--cache``, default a temporary folder): tokenizer training on
   the bounded sample, parallel encoding, unigram counts; with ``--max-mb`` only that many MB of
   the files (whole files in content-hash order, a sample across every package) are built, so
   the figure can be taken without the full build's CPU;
3. a second load: what a trial given ``python:DIGEST`` does (open the cache by its key);
4. trial start-up: a fresh interpreter from before ``import budgetune.trainables`` to the end of
   the first training step (imports, ``load_data``, the rest of ``Trial()``, one step), and its
   peak memory, for the built-in corpus, ``python:DIGEST`` (a search's trial) and ``python``
   (``budgetune train --corpus python``, which lists and hashes the environment first); with
   ``--baseline CHECKOUT``, the built-in corpus with that checkout's code too. The best of
   ``--repeats`` runs each.

    nice -n 10 .venv/bin/python benchmarks/corpus.py [--max-mb 25] [--vocab-size 4096]
        [--cache DIR] [--baseline ../main]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

from budgetune.trainables import (
    PythonFiles,
    build_python_corpus,
    discover,
    load_data,
    load_python,
)
from budgetune.trainables._pycorpus import corpus_folder
from budgetune.trainables._tokenfile import read_meta

STARTUP = """
import resource, sys, time
t0 = time.perf_counter()
from budgetune.spaces import Schedule
from budgetune.trainables import Trial, TrialConfig, load_data
t1 = time.perf_counter()
data = load_data({corpus!r}, {vocab})  # cached per process: the Trial below reuses it
t2 = time.perf_counter()
schedule = Schedule(d_model=64, n_layers=2, n_heads=2, seq_len=64, batch_size=16,
                    vocab_size={vocab})
trial = Trial(schedule, 1e12, TrialConfig(corpus={corpus!r}, eval_tokens=8192, n_reports=1))
t3 = time.perf_counter()
trial._train_step()
t4 = time.perf_counter()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
print(t1 - t0, t2 - t1, t3 - t2, t4 - t0, rss, data.corpus_id, len(data.train))
"""


def subset(files: PythonFiles, max_mb: float | None) -> PythonFiles:
    """The files of at most ``max_mb`` MB, whole, in content-hash order (keyed apart from the
    whole environment's corpus, so the two are never confused in the cache)."""
    if max_mb is None:
        return files
    chosen, size = [], 0
    for f in sorted(files.files, key=lambda f: f.sha256):
        if size + f.size > max_mb * 1e6:
            continue
        chosen.append(f)
        size += f.size
    digest = hashlib.sha256(f"{files.digest} max {max_mb} MB".encode()).hexdigest()[:16]
    return PythonFiles(tuple(sorted(chosen, key=lambda f: f.key)), digest, files.n_listed)


def startup(corpus: str, vocab: int, repeats: int, path: str | None = None) -> dict:
    """The best of ``repeats`` fresh interpreters (``path``: another checkout's code)."""
    env = {**os.environ, **({"PYTHONPATH": path} if path else {})}
    best = None
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", STARTUP.format(corpus=corpus, vocab=vocab)],
                             capture_output=True, text=True, check=True, env=env, cwd=path)
        imports, data, trial, first_step, rss, corpus_id, n = out.stdout.split()
        row = {"imports_s": round(float(imports), 2), "load_data_s": round(float(data), 3),
               "trial_init_s": round(float(trial), 2),
               "to_first_step_s": round(float(first_step), 2),
               "peak_rss_mb": round(float(rss)), "corpus_id": corpus_id, "train_tokens": int(n)}
        if best is None or row["to_first_step_s"] < best["to_first_step_s"]:
            best = row
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-mb", type=float, default=None,
                        help="build only this many MB of the files (default: all)")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--cache", default=None,
                        help="BUDGETUNE_CACHE for the build (default: a fresh temporary one)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--baseline", default=None, metavar="CHECKOUT",
                        help="also time the built-in corpus's start-up with another checkout's "
                        "code (e.g. main before this change)")
    args = parser.parse_args()
    os.environ["BUDGETUNE_CACHE"] = args.cache or tempfile.mkdtemp(prefix="budgetune-corpus-")

    t0 = time.perf_counter()
    files = discover()
    discovery_s = time.perf_counter() - t0
    built = subset(files, args.max_mb)
    cached = read_meta(corpus_folder(built.digest, args.vocab_size)) is not None
    t0 = time.perf_counter()
    meta = build_python_corpus(built, args.vocab_size)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = load_python(f"python:{built.digest}", args.vocab_size)
    second_load_s = time.perf_counter() - t0
    assert data.corpus_id == meta["corpus_id"]

    load_data("builtin", args.vocab_size)  # its cache too: start-up, not its build, is timed
    load_data_startup = {"builtin": startup("builtin", args.vocab_size, args.repeats),
                         "python:DIGEST": startup(f"python:{built.digest}", args.vocab_size,
                                                  args.repeats)}
    if args.max_mb is None:  # `python` names the whole environment, not the subset
        load_data_startup["python"] = startup("python", args.vocab_size, args.repeats)
    if args.baseline:
        load_data_startup["builtin, baseline"] = startup("builtin", args.vocab_size, args.repeats,
                                                         args.baseline)
    print(json.dumps({
        "cpus": os.cpu_count(), "vocab_size": args.vocab_size, "max_mb": args.max_mb,
        "discovery": {"seconds": round(discovery_s, 2), "files_listed": files.n_listed,
                      "files": len(files.files), "bytes": files.n_bytes},
        "built": {"files": meta["files"], "bytes": meta["bytes"],
                  "tokenizer_sample_bytes": meta["tokenizer_sample_bytes"],
                  "tokenizer_s": meta["tokenizer_s"], "encode_s": meta["encode_s"],
                  "encode_mb_per_s": round(meta["bytes"] / 1e6 / meta["encode_s"], 2),
                  "was_cached": cached,  # then build_s is a second build's: a lookup
                  "build_s": round(build_s, 1), "train_tokens": meta["train_tokens"],
                  "valid_tokens": meta["valid_tokens"],
                  "bytes_per_token": round(meta["bytes"] / (meta["train_tokens"]
                                                            + meta["valid_tokens"]), 3)},
        "second_load_s": round(second_load_s, 3),
        "trial_startup": load_data_startup,
    }, indent=1))


if __name__ == "__main__":
    main()
