"""The kept models' ranking: the K best schedules per budget, a schedule's seeds together,
decided from the files' metadata alone."""

import numpy as np
from safetensors.numpy import save_file

from budgetune.results import (
    find_kept,
    kept_models,
    point_metadata,
    point_path,
    prune_kept,
    rank_loss,
)


def _keep(folder, budget, trial, objective, d_model, seed=0, experiment="wsd-1e+12",
          quant_bits=32):
    schedule = {"model": "gpt2", "d_model": d_model, "seed": seed, "quant_bits": quant_bits}
    path = point_path(folder, budget, experiment, trial)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.zeros(4, np.float32)}, str(path), metadata=point_metadata(
        schedule=schedule, budget_flops=budget, experiment=experiment, trial_id=trial,
        rank_loss=objective, val_loss=objective, main_line_flops=1e12, corpus_id="c",
        eval_tokens=1024))
    return path


def test_prune_keeps_the_k_best_schedules_with_all_their_seeds(tmp_path):
    for i, (objective, d) in enumerate([(4.0, 16), (3.0, 32), (5.0, 64), (3.5, 48)]):
        _keep(tmp_path, 1e11, f"t{i}", objective, d)
    # the winner's repeat, retrained at its best cell's bits: the same recipe, as best pools it
    _keep(tmp_path, 1e11, "r1", 3.2, 32, seed=1, experiment="repeats-1e+11", quant_bits=4)
    _keep(tmp_path, 3e11, "t0", 9.0, 16)  # another budget: ranked on its own
    deleted = prune_kept(tmp_path, 1e11, keep=2)
    left = {k.trial_id for k in kept_models(tmp_path, 1e11)}
    assert left == {"t1", "r1", "t3"}  # d32 (both seeds) and d48; d16 and d64 dropped
    assert len(deleted) == 2
    assert find_kept(tmp_path, 3e11, "t0") is not None  # untouched
    assert find_kept(tmp_path, 1e11, "t2") is None


def test_pruning_in_any_order_ends_in_the_same_files(tmp_path):
    """Workers prune as their points arrive: the K best of a growing set only lose members, so
    pruning after every arrival leaves what one pruning at the end leaves."""
    objectives = [5.0, 3.0, 4.5, 2.0, 6.0, 2.5]
    for i, objective in enumerate(objectives):
        _keep(tmp_path / "a", 1e11, f"t{i}", objective, 16 * (i + 1))
        prune_kept(tmp_path / "a", 1e11, keep=3)
        _keep(tmp_path / "b", 1e11, f"t{i}", objective, 16 * (i + 1))
    prune_kept(tmp_path / "b", 1e11, keep=3)
    names = [{k.trial_id for k in kept_models(tmp_path / x, 1e11)} for x in "ab"]
    assert names[0] == names[1] == {"t1", "t3", "t5"}


def test_a_point_ranks_by_its_best_cell_within_the_size_limit():
    cells = [(4.0, 900), (3.5, 2000), (float("nan"), 10), (3.8, 1000)]
    assert rank_loss(cells, 1000) == 3.8
    assert rank_loss(cells, None) == 3.5
    assert rank_loss(cells, 100) == float("inf")


def test_keep_zero_keeps_nothing_and_a_foreign_file_is_left_alone(tmp_path):
    _keep(tmp_path, 1e11, "t0", 3.0, 16)
    foreign = tmp_path / f"{1e11:.6g}" / "mine.safetensors"
    save_file({"w": np.zeros(1, np.float32)}, str(foreign))
    prune_kept(tmp_path, 1e11, keep=0)
    assert kept_models(tmp_path) == [] and foreign.exists()


def test_disk_bytes_counts_a_folder_that_a_running_search_deletes_meanwhile(tmp_path):
    """`status` measures disk use while the search deletes checkpoint folders: a folder gone
    mid-walk counts as gone (Path.rglob raised FileNotFoundError, a traceback in `status`)."""
    import shutil
    import threading

    from budgetune.results import disk_bytes

    stop = threading.Event()

    def churn():
        i = 0
        while not stop.is_set():
            folder = tmp_path / "tune" / f"trial_{i % 7}" / f"checkpoint_{i:06d}" / "a" / "b"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "state.pt").write_bytes(b"x" * 100)
            shutil.rmtree(tmp_path / "tune" / f"trial_{(i + 3) % 7}", ignore_errors=True)
            i += 1

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        sizes = [disk_bytes(tmp_path) for _ in range(400)]
    finally:
        stop.set()
        thread.join()
    assert all(size % 100 == 0 for size in sizes) and max(sizes) > 0
