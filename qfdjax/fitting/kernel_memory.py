"""A command's warm start: the kernels it loaded last time, loaded again before it asks for them.

Why: a warm command still spends 0.25-1 s loading its kernels (lowering each exported
artifact and reading its executable from the compile cache: ~0.1 s per kernel on two cores),
one after the other, each when the host first needs it.  The kernels a command needs depend
on its shapes, which it learns late (after its inputs, its observed fit, its first round);
the ones it loaded last time are a good guess early.  Each process that finishes a command
writes their keys (`remember_kernels`); the next run of that command starts loading them on
a prefetch thread as soon as JAX is imported (`prefetch_remembered`), while the main thread
is still importing and preparing.  A guess that is wrong only costs the other core's time:
the main thread takes a kernel from the prefetch only when its key, which names the code, the
structure and the shapes, is the one it asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..io import atomic_write_bytes
from ..runtime import cache_dir
from . import compiled

# At most this many kernels are remembered per command (a scan loads 6-8).
REMEMBERED = 24


def _memory_file(command: str) -> Path | None:
    folder = cache_dir()
    if folder is None or not command.isidentifier():
        return None
    return Path(folder) / "export" / f"remembered-{command}.json"  # beside the artifacts it names


def remember_kernels(command: str) -> None:
    """Write the kernels this process loaded, in the order it loaded them, as `command`'s warm start."""
    path = _memory_file(command)
    if path is None or not compiled._NAMES:
        return
    entries = [{"name": name, "key": key} for key, name in list(compiled._NAMES.items())[:REMEMBERED]]
    try:
        atomic_write_bytes(path, json.dumps(entries).encode())
    except OSError:
        pass  # a read-only cache only costs speed


def prefetch_remembered(command: str) -> int:
    """Start loading, on the prefetch threads, the kernels `command` loaded last time; returns how many."""
    path = _memory_file(command)
    if path is None or not compiled.prefetching():
        return 0
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0
    started = 0
    for entry in entries[:REMEMBERED] if isinstance(entries, list) else ():
        name, key = (entry.get(k) if isinstance(entry, dict) else None for k in ("name", "key"))
        if not (isinstance(name, str) and isinstance(key, str) and key.isalnum()):
            continue
        artifact = compiled.artifact_path(key)
        if artifact is not None and artifact.is_file():
            compiled.submit_prefetch(key, _load, name, artifact, guessed=True)
            started += 1
    return started


def _load(name: str, artifact: Path) -> tuple:
    import jax

    exported = compiled.read_artifact(artifact)
    specs = [jax.ShapeDtypeStruct(aval.shape, aval.dtype) for aval in exported.in_avals]
    call, how = compiled.compile_exported(name, exported, specs)
    return call, f"loaded from {artifact.parent}{how} (remembered)"
