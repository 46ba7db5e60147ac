"""Feldman-Cousins chunk files (DIR/fc/fc_*.npz): each group of grid points' per-toy t, written atomically
with its run's fingerprint and a checksum, and read back only when both match.

Why checked: the regions are read from these files, so a zeroed t would set a point's critical
value to 0 and reversed point ids would swap two points' results -- both silently.  A chunk that
does not verify is named and its points fitted again; another run's chunk is skipped.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def chunk_checksum(fingerprint: str, points, t, valid, deficit) -> str:
    """SHA-256 of an FC chunk's run, point ids, per-toy results and search check (dtype and shape included)."""
    h = hashlib.sha256(fingerprint.encode())
    for value in (np.asarray(points, np.int64), np.asarray(t, np.float64), np.asarray(valid, bool),
                  np.asarray(deficit, np.float64)):
        value = np.ascontiguousarray(value)
        h.update(str(value.dtype).encode() + str(value.shape).encode() + value.tobytes())
    return h.hexdigest()


def chunk_problem(saved: dict, fingerprint: str, n: int, size: int):
    """Why a saved FC chunk cannot be used (None if it can): its checksum, ids and shapes are checked."""
    if "fingerprint" in saved and str(saved["fingerprint"]) != fingerprint:
        return "another run"
    missing = [k for k in ("fingerprint", "points", "t", "valid", "search_deficit", "checksum") if k not in saved]
    if missing:
        return f"missing {', '.join(missing)}"
    points, t, valid, deficit = saved["points"], saved["t"], saved["valid"], saved["search_deficit"]
    if str(saved["checksum"]) != chunk_checksum(fingerprint, points, t, valid, deficit):
        return "its checksum does not match its contents"
    if points.ndim != 1 or points.size == 0 or not np.issubdtype(points.dtype, np.integer):
        return "its point ids are not a list of integers"
    if np.unique(points).size != points.size or points.min() < 0 or points.max() >= size:
        return "its point ids are repeated or outside the grid"
    if t.shape != (points.size, n) or valid.shape != (points.size, n) or deficit.shape != (points.size,):
        return "its arrays do not match its point ids and toy count"
    return None


def read_chunks(folder: Path, fingerprint: str, t_all, valid_all, done, warn=None, deficit_all=None) -> None:
    """Fill in every point a verified chunk of this FC run holds: another run's chunk is skipped, and a
    damaged or edited one is named (`warn`) and its points fitted again -- never trusted."""
    from ..io import load_npz

    for path in sorted(folder.glob("fc_*.npz")):
        try:
            saved = load_npz(path)
            problem = chunk_problem(saved, fingerprint, t_all.shape[1], t_all.shape[0])
        except Exception as err:  # noqa: BLE001 - an unreadable chunk is refitted, never trusted
            problem = f"unreadable ({type(err).__name__})"
        if problem == "another run":
            continue
        if problem is not None:
            if warn is not None:
                warn(f"qfdjax report: ignoring {path.name}: {problem}; its points' toys are fitted again")
            continue
        ids = saved["points"]
        t_all[ids], valid_all[ids], done[ids] = saved["t"], saved["valid"], True
        if deficit_all is not None:
            deficit_all[ids] = saved["search_deficit"]


def write_chunk(folder: Path, fingerprint: str, points, t, valid, deficit) -> None:
    """One group's chunk, atomically; `deficit` (per point, NaN where its first toy was not sampled) is how
    far the sampled toy's minimum over every grid node lay below its local search's (see fc.py)."""
    from ..io import write_npz

    write_npz(Path(folder) / f"fc_{int(points[0]):06d}_{int(points[-1]):06d}.npz", fingerprint=np.array(fingerprint),
              points=points, t=t, valid=valid, search_deficit=np.asarray(deficit, np.float64),
              checksum=np.array(chunk_checksum(fingerprint, points, t, valid, deficit)))
