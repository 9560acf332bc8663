"""Which of Tune's saved experiment states has reached the results folder.

Tune saves its experiment state (``experiment_state-<session>.json``, with the searcher's and
the callbacks' states) to a staging folder on the driver, then copies that folder to the
storage path (``RESULTS/NAME/tune/EXPERIMENT``) in a background thread, and skips a copy while
the last one is still running (``ray.train._internal.syncer``): on slow shared storage several
saves can pass before one is stored. ``--resume`` restores from the newest stored state, so a
Tune checkpoint may be deleted only once a *stored* state no longer needs it: the results
callback records the digest of the staged state at each save (``staged_digest``) and deletes
what that save recorded once the stored state's digest (``stored_digest``) equals it or a later
one's. Two saves with the same digest hold the same state, so either confirms both.
"""

from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path

import pyarrow.fs as pafs

STATE_FILES = "experiment_state-*.json"  # Tune's TuneController.CKPT_FILE_TMPL
CHUNK = 1 << 20


def _digest(stream) -> str:
    h = hashlib.blake2b(digest_size=16)
    while chunk := stream.read(CHUNK):
        h.update(chunk)
    return h.hexdigest()


def staged_digest(staging: str | Path) -> str | None:
    """The digest of the newest experiment state in Tune's driver staging folder (the one it
    has just written, when called from a callback's ``get_state``); None if there is none."""
    files = sorted(Path(staging).glob(STATE_FILES))
    if not files:
        return None
    with open(files[-1], "rb") as f:
        return _digest(f)


def stored_digest(fs: pafs.FileSystem, folder: str) -> str | None:
    """The digest of the newest experiment state stored under ``folder`` on ``fs`` (the one
    ``--resume`` restores, as Tune picks it: the largest name); None if there is none or it
    could not be read (a copy in flight)."""
    try:
        infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        names = sorted(i.path for i in infos if i.type == pafs.FileType.File
                       and fnmatch.fnmatch(i.base_name, STATE_FILES))
        if not names:
            return None
        with fs.open_input_stream(names[-1]) as f:
            return _digest(f)
    except OSError:  # FileNotFoundError included: a copy in flight
        return None


def confirmed(pending: list[tuple[str | None, list]], stored: str | None) -> int:
    """How many of the oldest ``pending`` (digest of the staged state at a save, what that save
    recorded) a stored state with digest ``stored`` covers: up to and including the newest save
    whose staged state it equals."""
    if stored is None:
        return 0
    return max((i + 1 for i, (digest, _) in enumerate(pending) if digest == stored), default=0)
