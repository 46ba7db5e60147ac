"""Atomic output and run metadata (versions, device, time)."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _atomic_write(path, write):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; results are ordinary files, readable as the umask allows.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _to_jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if hasattr(obj, "__array__") and not isinstance(obj, (str, bytes)):
        return _to_jsonable(np.asarray(obj))
    return obj


def check_output_dir(path, what: str = "out") -> Path:
    """`path` as a directory we can create and write, or an InputError naming it (before any work)."""
    from .errors import InputError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} = {str(path)!r} is a file: give a directory")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{what} = {str(path)!r} cannot be created: {str(parent)!r} is a file")
    if not os.access(parent, os.W_OK | os.X_OK) or _read_only_filesystem(parent):
        raise InputError(f"{what} = {str(path)!r} cannot be written: {str(parent)!r} is not writable")
    return path


def check_output_file(path, what: str = "out") -> Path:
    """`path` as a file we can write (its directory exists or can be made), checked before any work."""
    from .errors import InputError

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} = {str(path)!r} is a directory: give a file name")
    check_output_dir(path.parent if str(path.parent) else Path("."), what)
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{what} = {str(path)!r} cannot be written (no permission)")
    return path


def _read_only_filesystem(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def write_json(path, data) -> None:
    """Write JSON atomically: a reader sees the old file or the whole new one."""
    text = json.dumps(_to_jsonable(data), indent=1)
    _atomic_write(path, lambda h: h.write(text.encode()))


def atomic_write_bytes(path, data: bytes) -> None:
    _atomic_write(path, lambda h: h.write(data))


def write_text(path, text: str) -> None:
    _atomic_write(path, lambda h: h.write(text.encode()))


def write_npz(path, **arrays) -> None:
    _atomic_write(path, lambda h: np.savez(h, **arrays))


def run_metadata() -> dict:
    """Versions, device and host, for every result file."""
    import jax

    versions = {"qfdjax": _version("qfdjax"), "python": sys.version.split()[0], "numpy": np.__version__}
    # Read from the installed metadata: importing optax, optimistix or SciPy
    # just to print their versions costs a second of start-up.
    for name in ("jax", "jaxlib", "equinox", "optimistix", "optax", "scipy"):
        found = _version(name)
        if found is not None:
            versions[name] = found
    devices = jax.devices()
    return {
        "versions": versions,
        "device": {
            "platform": devices[0].platform,
            "kind": devices[0].device_kind,
            "count": len(devices),
        },
        "host": {"machine": platform.machine(), "cpu_count": os.cpu_count(), "system": platform.system()},
        "x64": bool(jax.config.jax_enable_x64),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
