"""Property-based: whatever a user types, writes in a space file or leaves in a results folder,
budgetune answers with a result or with one line and status 2 — never a traceback — and
nothing already written changes.

The CLI runs in-process (``budgetune.cli.main``), so hypothesis can try many inputs quickly;
``tests/test_cli.py`` checks the same contract through a real subprocess.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from budgetune.cli import main
from budgetune.results import part_files
from budgetune.spaces import schedule_fields
from tests.analysis.synthetic import trial_rows, write
from tests.search.processes import free_port
from tests.spaces.shipped import shipped_maps

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
FIELDS = [f.name for f in schedule_fields()]


def _cli(*argv: str) -> tuple[int, str]:
    """(exit status, stderr) of ``budgetune ARGV``, run in this process."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(list(argv))
        except SystemExit as e:  # argparse's own errors
            code = e.code
    return code, err.getvalue()


def _assert_one_line_refusal(code: int, stderr: str) -> None:
    assert code == 2, stderr
    assert stderr.startswith("budgetune: error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr


def _assert_answer_or_refusal(code: int, stderr: str) -> None:
    assert code in (0, 2), stderr
    if code == 2:
        _assert_one_line_refusal(code, stderr)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- space files ---------------------------------------------------------------------------

scalars = st.one_of(
    st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.text(max_size=12), st.none(),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.sampled_from(["low", "high", "log", "int", "step"]), scalars,
                    max_size=4),
)
space_maps = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=10)), values,
    min_size=0, max_size=6,
)


# The shipped spaces, which once crashed the dry run (a `Choice` handed to `Schedule`).
SHIPPED = shipped_maps()


def _shipped_examples(test):
    for space in SHIPPED:
        test = example(space=space)(test)
    return test


@SETTINGS
@given(space=space_maps)
@example(space={"\n": {}})  # found by this test: a field name quoted its line break raw
@_shipped_examples
def test_any_yaml_space_is_planned_or_refused_in_one_line(space):
    with tempfile.TemporaryDirectory() as root:
        path = Path(root, "space.yaml")
        path.write_text(yaml.safe_dump(space))
        budget = [] if space in SHIPPED else ["--budget", "1e12"]  # theirs: fits the space
        code, stderr = _cli("search", "--space", str(path), *budget, "--dry-run",
                            "--results", str(Path(root, "results")))
        _assert_answer_or_refusal(code, stderr)
        assert not Path(root, "results").exists()  # a dry run writes nothing
        if space in SHIPPED:
            assert code == 0, stderr


@SETTINGS
@given(text=st.text(max_size=200), suffix=st.sampled_from([".yaml", ".toml"]))
def test_any_text_as_a_space_file_is_planned_or_refused_in_one_line(text, suffix):
    with tempfile.TemporaryDirectory() as root:
        path = Path(root, "space" + suffix)
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        code, stderr = _cli("search", "--space", str(path), "--budget", "1e12", "--dry-run",
                            "--results", root)
        _assert_answer_or_refusal(code, stderr)


# -- command-line flags --------------------------------------------------------------------

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(-10**30, 10**30), st.sampled_from(["0", "-0", "1e400", "NaN"]))
flag_values = st.one_of(numbers.map(str), st.text(max_size=8))
SEARCH_FLAGS = ["--budget", "--num-samples", "--max-mb", "--max-total-flops",
                "--reduction-factor", "--grace-fraction", "--max-concurrent",
                "--cpus-per-trial", "--gpus-per-trial", "--seed", "--space", "--name",
                "--searcher", "--scheduler", "--eval-tokens", "--repeats", "--lr-schedule"]


@SETTINGS
@given(flags=st.dictionaries(st.sampled_from(SEARCH_FLAGS), flag_values, min_size=1,
                             max_size=3))
@example(flags={"--cpus-per-trial": "100000"})  # once aborted the process: 100000 threads
@example(flags={"--space": "paper"})  # once a traceback: a Choice handed to Schedule
@example(flags={"--space": "quick"})
def test_any_search_flags_are_planned_or_refused_in_one_line(flags):
    with tempfile.TemporaryDirectory() as root:
        argv = ["search", "--dry-run", "--results", root]
        for flag, value in flags.items():
            argv += [flag + "=" + value]  # "=" keeps a value like "-5" from reading as a flag
        _assert_answer_or_refusal(*_cli(*argv))


def _invalid_for(field: str):
    """Values of a Schedule field that no schedule may have (so `train` must refuse them)."""
    text = st.text(max_size=8).filter(lambda s: not _parses(s))
    if field == "model":
        return st.text(max_size=8).filter(lambda s: s not in ("gpt2", "bert"))
    negative = st.one_of(st.integers(-10**9, -1).map(str),
                         st.floats(max_value=-1e-9, allow_infinity=True).map(str))
    non_finite = st.sampled_from(["nan", "inf", "-inf"])
    return st.one_of(text, negative, non_finite)


def _parses(s: str) -> bool:
    try:
        return math.isfinite(float(s))
    except ValueError:
        return False


@SETTINGS
@given(data=st.data(), field=st.sampled_from([f for f in FIELDS if f != "seed"]))
def test_an_impossible_schedule_value_is_refused_before_training(data, field):
    value = data.draw(_invalid_for(field), label=field)
    flag = "--" + field.replace("_", "-")
    _assert_one_line_refusal(*_cli("train", f"{flag}={value}", "--budget", "1e9"))


@SETTINGS
@given(budget=numbers)
def test_a_budget_is_trained_only_when_positive_finite_and_plausible(budget):
    code, stderr = _cli("best", "--budget", str(budget), "--results", "/nonexistent/results")
    _assert_one_line_refusal(code, stderr)  # either the budget or the missing folder
    value = float(budget) if _parses(str(budget)) else math.nan
    if not (0 < value <= 1e30):
        assert "budget" in stderr


# -- results tables ------------------------------------------------------------------------

def _results(root: Path) -> Path:
    r1, t1 = trial_rows("e", "a", 1e12, 1e5, 3.0)
    r2, t2 = trial_rows("e", "b", 1e12, 2e5, 3.5, status="stopped", stop_reason="asha",
                        steps=(1,))
    write(root, "s", r1 + r2, [t1, t2])
    return root


corruptions = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 0.99)),
    st.tuples(st.just("overwrite"), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("foreign"), st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.lists(st.one_of(st.integers(-5, 5), st.text(max_size=3)), min_size=2, max_size=2),
        min_size=1, max_size=4)),
    st.tuples(st.just("drop"), st.integers(0, 10**6)),
    st.tuples(st.just("retype"), st.integers(0, 10**6)),
)


def _corrupt(part: Path, how: tuple) -> None:
    kind, arg = how
    if kind == "truncate":
        data = part.read_bytes()
        part.write_bytes(data[: int(len(data) * arg)])
    elif kind == "overwrite":
        part.write_bytes(arg)
    elif kind == "foreign":
        columns = {k: [str(x) for x in v] if any(isinstance(x, str) for x in v) else v
                   for k, v in arg.items()}
        pq.write_table(pa.table(columns), part)
    else:
        table = pq.read_table(part)
        name = table.column_names[arg % table.num_columns]
        if kind == "drop":
            table = table.drop_columns([name])
        else:
            old = table.column(name)
            column = (pa.array([len(x or "") for x in old.to_pylist()])
                      if pa.types.is_string(old.type) or pa.types.is_large_string(old.type)
                      else pa.array([str(x) for x in old.to_pylist()]))
            table = table.set_column(table.column_names.index(name), name, column)
        pq.write_table(table, part)


@SETTINGS
@given(how=corruptions, table=st.sampled_from(["reports", "trials"]),
       command=st.sampled_from([("best", "--budget", "1e12"), ("status",), ("plot",)]))
def test_a_corrupt_results_part_is_refused_in_one_line_and_nothing_changes(how, table,
                                                                            command):
    with tempfile.TemporaryDirectory() as tmp:
        root = _results(Path(tmp))
        part = part_files(root / "s", table)[0]
        _corrupt(part, how)
        before = _digest(root)
        code, stderr = _cli(*command, "--results", str(root))
        if command[0] == "status" and table == "reports":
            _assert_answer_or_refusal(code, stderr)  # status reads the trials table only
        else:
            _assert_one_line_refusal(code, stderr)
            assert part.name in stderr and "out of the results directory" in stderr  # the fix
        assert _digest(root) == before


# -- cluster addresses ---------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(address=st.one_of(
    st.text(max_size=20).filter(lambda s: s.strip() and s != "auto" and ":" not in s),
    st.builds(lambda p: f"127.0.0.1:{p}", st.integers(65536, 10**6)),
    st.builds(lambda p: f"ray://127.0.0.1:{p}", st.integers(-10**6, 0)),
))
def test_a_malformed_cluster_address_is_refused_before_anything_is_written(address):
    with tempfile.TemporaryDirectory() as root:
        code, stderr = _cli("search", "--space", "quick", "--budget", "1e11", "--address",
                            address, "--results", root)
        _assert_one_line_refusal(code, stderr)
        assert list(Path(root).iterdir()) == []


def test_an_unreachable_cluster_is_refused_in_seconds_before_anything_is_written():
    for address in (f"127.0.0.1:{free_port()}", f"ray://127.0.0.1:{free_port()}"):
        with tempfile.TemporaryDirectory() as root:
            code, stderr = _cli("search", "--space", "quick", "--budget", "1e11",
                                "--address", address, "--results", root)
            _assert_one_line_refusal(code, stderr)
            assert "Cannot reach the Ray cluster" in stderr and "ray start --head" in stderr
            assert list(Path(root).iterdir()) == []


def test_a_reader_that_closes_the_pipe_early_gets_no_traceback(tmp_path):
    """`budgetune ... | head -c 100`: the command stops quietly, status 141 (128 + SIGPIPE)."""
    proc = subprocess.Popen([sys.executable, "-m", "budgetune.cli", "search", "--dry-run",
                             "--results", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # before it writes: its imports take a second
    _, stderr = proc.communicate(timeout=120)
    assert (proc.returncode, stderr.decode()) == (141, "")
