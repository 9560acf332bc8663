"""The `python` corpus: discovery of installed sources, token files, the build in the cache."""

import hashlib

import numpy as np
import pytest
from tokenizers import Tokenizer

from budgetune.trainables import (
    discover,
    list_sources,
    load_python,
    open_tokens,
    write_tokens,
)
from budgetune.trainables._pycorpus import build_python_corpus, corpus_folder

N_MODULES = 60


def _module(i: int) -> str:
    body = "\n".join(f"    value_{j} = compute({i}, {j}) + {i * j % 17}" for j in range(30))
    return f'"""Module {i}."""\n\n\ndef function_{i}(x):\n{body}\n    return x\n'


def fake_environment(root):
    """A standard library and a site-packages with test suites, caches, an empty file and a
    vendored copy, as installed Python has them."""
    stdlib, site = root / "lib" / "python3.11", root / "venv" / "site-packages"
    files = {
        stdlib / "json" / "decoder.py": _module(1000),
        stdlib / "test" / "test_json.py": "assert True\n",  # the stdlib's test suite
        stdlib / "idlelib" / "idle_test" / "htest.py": "x = 1\n",
        stdlib / "site-packages" / "nested.py": "x = 2\n",  # another root's, not the stdlib's
        site / "pkg" / "__init__.py": "",  # empty
        site / "pkg" / "tests" / "helpers.py": "x = 3\n",
        site / "pkg" / "test_thing.py": "x = 4\n",
        site / "pkg" / "thing_test.py": "x = 5\n",
        site / "pkg" / "conftest.py": "x = 6\n",
        site / "pkg" / "__pycache__" / "cached.py": "x = 7\n",
        site / "pkg" / "notes.txt": "not python\n",
        site / "vendor" / "_vendored" / "json_decoder.py": _module(1000),  # a copy
    }
    files.update({site / "pkg" / f"m{i:02d}.py": _module(i) for i in range(N_MODULES)})
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return {"stdlib": stdlib, "site-packages": site}


def test_discovery_leaves_out_test_suites_caches_empty_files_and_duplicates(tmp_path):
    found = discover(fake_environment(tmp_path))
    keys = [f.key for f in found.files]
    assert keys == sorted(keys)
    # of two equal files the smaller key is kept
    assert set(keys) == {"site-packages/vendor/_vendored/json_decoder.py"} | {
        f"site-packages/pkg/m{i:02d}.py" for i in range(N_MODULES)}
    assert found.n_listed == N_MODULES + 3  # the copy and the empty file were listed
    assert found.train and found.valid and set(found.train).isdisjoint(found.valid)
    assert found.n_bytes == sum(len(_module(i)) for i in [1000, *range(N_MODULES)])


def test_discovery_is_deterministic_and_its_digest_follows_the_contents(tmp_path):
    roots = fake_environment(tmp_path)
    first, again = discover(roots), discover(roots)
    assert first == again
    for f in first.files:  # the split is by content: a file's hash alone decides it
        assert f.sha256 == hashlib.sha256(open(f.path, "rb").read()).hexdigest()
        assert f.in_valid == (int(f.sha256[:16], 16) % 20 == 0)
    (roots["site-packages"] / "pkg" / "m00.py").write_text(_module(0) + "# edited\n")
    assert discover(roots).digest != first.digest


def test_real_environment_listing_is_deterministic_and_has_no_test_suites():
    listed = list_sources()
    assert listed == list_sources()
    keys = [k for k, _ in listed]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert len(keys) > 5000 and any(k.startswith("site-packages/") for k in keys)
    for key in keys:
        parts = key.split("/")
        assert not {"test", "tests", "__pycache__"} & set(parts[1:-1]), key
        assert not parts[-1].startswith("test_"), key


@pytest.mark.parametrize("dtype", ["uint16", "uint32"])
def test_token_file_round_trips_memory_mapped(tmp_path, dtype):
    rng = np.random.default_rng(0)
    high = 65536 if dtype == "uint16" else 1 << 20
    chunks = [rng.integers(0, high, n) for n in (1000, 0, 4097)]
    path = tmp_path / "train.bin"
    assert write_tokens(path, iter(chunks), dtype) == 5097
    assert path.stat().st_size == 5097 * np.dtype(dtype).itemsize
    tokens = open_tokens(path, dtype)
    assert isinstance(tokens, np.memmap) and tokens.dtype == np.dtype(dtype)
    assert np.array_equal(tokens, np.concatenate(chunks))
    assert len(open_tokens(_empty(tmp_path), dtype)) == 0


def _empty(folder):
    write_tokens(folder / "empty.bin", iter([]), "uint16")
    return folder / "empty.bin"


def test_python_corpus_is_built_once_and_opened_by_its_digest_without_scanning(
        tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETUNE_CACHE", str(tmp_path / "cache"))
    roots = fake_environment(tmp_path / "env")
    files = discover(roots)
    data = load_python("python", 300, roots)
    folder = corpus_folder(files.digest, 300)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    # the token files decode to the files themselves, each followed by the end of text
    for split, tokens in (("train", data.train), ("valid", data.valid)):
        docs = np.split(np.asarray(tokens), np.flatnonzero(tokens == data.eot_id) + 1)[:-1]
        texts = [tokenizer.decode(d[:-1].tolist()) for d in docs]
        assert texts == [open(f.path).read() for f in getattr(files, split)]
    assert np.array_equal(data.unigram_counts, np.bincount(data.train, minlength=300))
    built = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    # a trial names it by digest: the environment is not read again (here it is gone)
    for path in (tmp_path / "env").rglob("*.py"):
        path.unlink()
    again = load_python(f"python:{files.digest}", 300, roots)
    assert again.corpus_id == data.corpus_id and np.array_equal(again.train, data.train)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == built
    assert build_python_corpus(files, 300)["corpus_id"] == data.corpus_id  # cached: no rebuild
    with pytest.raises(ValueError, match="another environment"):
        load_python("python:0123456789abcdef", 300, fake_environment(tmp_path / "other"))


def test_a_dangling_link_in_site_packages_is_passed_over(tmp_path):
    """An environment with a broken link (a package half uninstalled) still gives its corpus:
    the link is listed, not read, and counted nowhere."""
    roots = fake_environment(tmp_path)
    clean = discover(roots)
    (roots["site-packages"] / "pkg" / "zz_broken.py").symlink_to(tmp_path / "gone.py")
    found = discover(roots)
    assert found.files == clean.files and found.n_bytes == clean.n_bytes
