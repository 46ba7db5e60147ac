"""Checkpoints of a scan: an output directory one run owns, and chunk files that prove what they hold.

A chunk file carries the configuration fingerprint, the point ids it solved
and a SHA-256 of its arrays.  On resume every file is read and verified; a file
that does not read, does not match its checksum, belongs to another
configuration, or holds points outside this run's range is never used (it is
reported and its points are fitted again).  Files are matched by the point ids
inside them, not by name or position, so resuming with another `--chunk`
reuses every finished point: the saved points' numbers are kept bit for bit, and
the points fitted anew equal a one-chunk run's to rounding (chi^2 to 1e-13; the
derived diagnostics to their printed digits, tests/test_guarantees.py).

The directory is claimed with an exclusive `flock` on DIR/.lock: a second
writer is refused at once, and a lock left by a killed process is released by
the kernel, so the next run takes it over.  Temporary files of a killed write
(`.*.tmp`) are removed by the next owner.  In a team of processes (team.py)
process 0 claims the directory for all; the others write only their chunk
files, after checking that they see process 0's stamp (a shared filesystem)
and run the same configuration.
"""

from __future__ import annotations

from typing import IO
import hashlib
import json
import os
import re
import sys
import uuid
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import load_npz, open_nofollow, safe_mkdir, write_json, write_npz
from ..fitting.kernel import SOLUTION_FIELDS

CHUNK_NAME = re.compile(r"^chunk_(\d{9})_(\d{9})\.npz$")
STAMP = "scan_config.json"


def _digest(fingerprint: str, ids: np.ndarray, arrays: dict) -> str:
    h = hashlib.sha256(fingerprint.encode())
    h.update(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
    for key in SOLUTION_FIELDS:
        value = np.ascontiguousarray(arrays[key])
        h.update(key.encode() + str(value.dtype).encode() + str(value.shape).encode() + value.tobytes())
    return h.hexdigest()


def hold_directory(path, what: str = "out", hint: str = "or choose another --out"):
    """An exclusive lock on a results directory (its .lock file), held until the returned handle is closed.

    Why: two processes writing one directory (two scans, or two `report --fc` runs) would interleave
    their files.  The kernel releases the lock when its holder dies, so a crashed run's rerun is never
    refused.  A second holder is refused in one line."""
    import fcntl

    try:
        handle = os.fdopen(open_nofollow(Path(path) / ".lock", os.O_RDWR | os.O_CREAT), "a+")
    except OSError as err:
        raise InputError(f"{what} = {str(path)!r} cannot be written: {err.strerror}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise InputError(f"{what} = {str(path)!r} is in use by another qfdjax process: wait for it, "
                         f"{hint}") from None
    return handle


class ScanDirectory:
    """An output directory held by this process for the duration of a `with` block."""

    def __init__(self, path, fingerprint: str, stamp: dict, team=None):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.stamp = stamp
        self.chunks = self.path / "chunks"
        self.team = team
        self._lock: IO[str] | None = None

    # --- ownership -----------------------------------------------------------
    def __enter__(self) -> "ScanDirectory":
        if self.team is None or self.team.size == 1:
            return self._claim()
        identity = {"fingerprint": self.fingerprint, "points": self.stamp.get("points"),
                    "chunk": self.stamp.get("chunk")}
        if self.team.lead:
            try:
                self.stamp = dict(self.stamp, run=uuid.uuid4().hex)
                self._claim()
            except InputError as err:
                self.team.publish("directory", {"error": str(err)})
                raise
            self.team.publish("directory", dict(identity, run=self.stamp["run"]))
            return self
        lead = self.team.wait_for("directory")
        if "error" in lead:
            raise InputError(f"process 0 refused the output directory: {lead['error']}")
        if {k: lead[k] for k in identity} != identity:
            differs = ", ".join(f"{k} {lead[k]!r} vs {v!r}" for k, v in identity.items() if lead[k] != v)
            raise InputError(f"{self.team.label()} runs another scan than process 0 ({differs}): every process "
                             f"must run the same command")
        try:
            seen = json.loads((self.path / STAMP).read_text()).get("run")
        except (OSError, ValueError):
            seen = None
        if seen != lead["run"]:
            raise InputError(f"out = {str(self.path)!r}: {self.team.label()} does not see the files process 0 "
                             f"wrote there: --out must be on a filesystem every process shares")
        return self

    def _claim(self) -> "ScanDirectory":
        try:
            safe_mkdir(self.path)
            for inner in (self.chunks, self.path / "logs"):
                # Links or files planted where qfdjax keeps its own folders would redirect its writes
                # and its clean-up of leftovers: refused, never followed.
                if os.path.lexists(inner) and (os.path.islink(inner) or not os.path.isdir(inner)):
                    raise InputError(f"out = {str(self.path)!r}: {str(inner)!r} is not a plain directory "
                                     f"(a link or a file): remove it or choose another --out")
        except OSError as err:
            raise InputError(f"out = {str(self.path)!r} cannot be written: {err.strerror}") from None
        self._lock = hold_directory(self.path, "out")
        try:
            for leftover in list(self.path.glob(".*.tmp")) + list(self.chunks.glob(".*.tmp")):
                leftover.unlink(missing_ok=True)
            self._check_stamp()
        except BaseException:
            # A refused directory (another run's stamp) must not stay locked until garbage collection:
            # __exit__ never runs when __enter__ raises.
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _check_stamp(self):
        stamp_path = self.path / STAMP
        previous = None
        if stamp_path.exists():
            try:
                previous = json.loads(stamp_path.read_text())
            except (OSError, ValueError):
                previous = None  # unreadable: the chunks' own fingerprints still guard them
        if isinstance(previous, dict) and previous.get("fingerprint") != self.fingerprint and self._has_results():
            raise InputError(self._mismatch_message(previous))
        write_json(stamp_path, self.stamp)

    def _has_results(self) -> bool:
        return (self.path / "scan.json").exists() or any(self._chunk_files())

    def _mismatch_message(self, previous: dict) -> str:
        old, new = _flat(previous.get("config", {})), _flat(self.stamp.get("config", {}))
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        # The point range lives beside the configuration, not in it: compared (and shown) from the stamps.
        old["points"], new["points"] = previous.get("points"), self.stamp.get("points")
        if old["points"] != new["points"]:
            changed.append("points")
        detail = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:4]) or "(details unknown)"
        return (f"out = {str(self.path)!r} holds a scan with a different configuration "
                f"(fingerprint {previous.get('fingerprint')} vs {self.fingerprint}; {detail}): refusing to mix "
                f"results; use a new --out or delete that directory")

    # --- chunks ----------------------------------------------------------------
    def _chunk_files(self):
        if not self.chunks.is_dir():
            return []
        return sorted(p for p in self.chunks.iterdir() if CHUNK_NAME.match(p.name))

    def write_chunk(self, ids: np.ndarray, arrays: dict) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        name = f"chunk_{int(ids[0]):09d}_{ids.size:09d}.npz"
        write_npz(self.chunks / name, ids=ids, fingerprint=np.array(self.fingerprint),
                  checksum=np.array(_digest(self.fingerprint, ids, arrays)),
                  **{k: np.asarray(arrays[k]) for k in SOLUTION_FIELDS})

    def read_chunks(self, wanted: np.ndarray, warn=print) -> tuple[np.ndarray, dict]:
        """(ids, arrays): the points of every valid chunk file among `wanted`, each once, sorted by id."""
        wanted = np.asarray(wanted, dtype=np.int64)
        id_parts, array_parts = [], []
        for path in self._chunk_files():
            problem = self._verify(path, wanted)
            if isinstance(problem, str):
                warn(f"qfdjax scan: ignoring {path.name}: {problem}; its points are fitted again")
                continue
            id_parts.append(problem[0])
            array_parts.append(problem[1])
        if not id_parts:
            return np.zeros(0, np.int64), {}
        ids, first = np.unique(np.concatenate(id_parts), return_index=True)
        return ids, {k: np.concatenate([a[k] for a in array_parts])[first] for k in SOLUTION_FIELDS}

    def _verify(self, path: Path, wanted: np.ndarray):
        try:
            data = load_npz(path)
            missing = [k for k in ("ids", "fingerprint", "checksum", *SOLUTION_FIELDS) if k not in data]
            if missing:
                return f"missing {', '.join(missing)}"
            ids = data["ids"].astype(np.int64)
            fingerprint = str(data["fingerprint"])
            checksum = str(data["checksum"])
            arrays = {k: data[k] for k in SOLUTION_FIELDS}
        except Exception as err:  # noqa: BLE001 - any unreadable file is reported, never trusted
            return f"unreadable ({type(err).__name__})"
        if fingerprint != self.fingerprint:
            return f"it belongs to another configuration (fingerprint {fingerprint})"
        if checksum != _digest(fingerprint, ids, arrays):
            return "its checksum does not match its contents"
        if ids.ndim != 1 or ids.size == 0 or np.unique(ids).size != ids.size:
            return "its point ids are empty or repeated"
        if not np.all(np.isin(ids, wanted)):
            return "it holds points outside this scan's range"
        if any(np.shape(arrays[k])[:1] != (ids.size,) for k in SOLUTION_FIELDS):
            return "its arrays do not match its point ids"
        if not np.all(np.isfinite(arrays["chi2_starts"]).any(axis=1)):
            return "it holds a point without a finite chi2"
        return ids, arrays


def _flat(config, prefix: str = "") -> dict:
    """{"fit.seed": 4, ...}: nested settings by dotted name, so a mismatch names the one that differs."""
    if not isinstance(config, dict):
        return {}
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and key != "bounds":
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def stderr_warning(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class ChunkWriter:
    """Writes chunk files on one background thread, at most one chunk behind the fits: chunk k is
    digested and synced to disk while chunk k+1 runs on the device.  Leaving the block (an interrupt
    too) waits for the write in flight, so a fitted chunk is never lost; a write's error is raised in
    the main thread at the next chunk or at the end.  `write_chunk(*args)` does one write."""

    def __init__(self, write_chunk):
        self._write_chunk = write_chunk
        self._pending = None
        self._pool = None

    def __enter__(self) -> "ChunkWriter":
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="qfdjax-chunk-writer")
        return self

    def write(self, *args) -> None:
        self.wait()
        assert self._pool is not None, "ChunkWriter.write outside its `with` block"
        self._pending = self._pool.submit(self._write_chunk, *args)

    def wait(self) -> None:
        """Until the write in flight is on disk (the main thread's wait counts as I/O)."""
        from ..runtime import spending

        if self._pending is not None:
            pending, self._pending = self._pending, None
            with spending("io"):
                pending.result()

    def __exit__(self, *exc) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
