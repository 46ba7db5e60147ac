"""Atomic output and run metadata (versions, device, time)."""

from __future__ import annotations

import errno
import os
import stat
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


def _refuse(message: str):
    from .errors import InputError

    raise InputError(message)


def safe_mkdir(path) -> Path:
    """Create `path` and its missing parents without following a symbolic link at any level created or
    entered below the first existing ancestor; a link or non-directory in the way is refused (InputError)."""
    path = Path(path)
    missing = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    if os.path.islink(probe) and probe == path:
        _refuse(f"{str(path)!r} is a symbolic link: qfdjax does not write through links inside its output")
    if os.path.lexists(probe) and not os.path.isdir(probe):
        _refuse(f"{str(probe)!r} is not a directory: cannot write {str(path)!r}")
    for directory in reversed(missing):
        try:
            os.mkdir(directory)
        except FileExistsError:
            pass
        if os.path.islink(directory) or not os.path.isdir(directory):
            _refuse(f"{str(directory)!r} is not a plain directory: cannot write {str(path)!r}")
    return path


def _check_target(path: Path) -> None:
    """A file we are about to replace must be a regular file or a link (replaced, never followed)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
        _refuse(f"{str(path)!r} exists and is not a regular file (a directory, FIFO or device): qfdjax will not "
                f"replace it")


def _atomic_write(path, write):
    from .runtime import spending

    with spending("io"):
        _atomic_write_now(path, write)


def _atomic_write_now(path, write):
    path = Path(path)
    safe_mkdir(path.parent)  # refuses the parent itself being a link, too
    _check_target(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; results are ordinary files, readable as the umask allows.
        os.chmod(tmp, 0o666 & ~_umask())
        # os.replace swaps the directory entry: a link planted at `path` is replaced, its target untouched.
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_npz(path) -> dict[str, np.ndarray]:
    """Every array of an .npz file, read at once; the file is closed whatever happens.

    np.load(path) leaves its file open when the archive is damaged (it raises before returning
    the object that would close it), so the file is opened here and handed over.
    """
    from .runtime import spending

    with spending("io"), open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def open_nofollow(path, flags: int, mode: int = 0o666):
    """os.open that refuses a symbolic link at `path` (O_NOFOLLOW) and a non-regular file."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0), mode)
    except OSError as err:
        if err.errno == errno.ELOOP:
            _refuse(f"{str(path)!r} is a symbolic link: qfdjax does not write through links inside its output")
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        _refuse(f"{str(path)!r} is not a regular file: qfdjax will not write it")
    os.set_blocking(fd, True)
    return fd


_PLAIN = (int, str, bool, type(None))


def _to_jsonable(obj):
    # Exact-type fast paths first: a big scan record is millions of plain floats, and the general
    # checks below (a getattr per value) made this conversion 3 s at 256 x 256 points.
    kind = type(obj)
    if kind is float:
        return obj if obj - obj == 0.0 else None  # NaN and +-inf are not JSON: null
    if kind in _PLAIN:
        return obj
    if kind is list:
        kinds = set(map(type, obj))  # a row of plain values (a .tolist() array): no call per value
        if kinds <= {float, *_PLAIN}:
            return [v if type(v) is not float or v - v == 0.0 else None for v in obj] if float in kinds else obj[:]
        return [_to_jsonable(v) for v in obj]
    if not isinstance(obj, dict) and callable(getattr(obj, "to_dict", None)):
        obj = obj.to_dict()  # a FitResult: its JSON record
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "biu":
            return obj.tolist()  # no NaN possible: plain ints and bools, already JSON
        if obj.dtype.kind == "f":
            plain = obj.astype(object)  # Python floats, converted in C, not value by value here
            plain[~np.isfinite(obj)] = None
            return plain.tolist()
        return _to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _to_jsonable(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if hasattr(obj, "__array__") and not isinstance(obj, (str, bytes)):
        return _to_jsonable(np.asarray(obj))
    return obj


def _check_name_lengths(path: Path, what: str) -> None:
    try:
        os.lstat(path)
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            _refuse(f"{what} = {str(path)[:60]!r}... is too long a path for this filesystem: give a shorter name")


def _nearest_existing(path: Path, what: str) -> Path:
    parent = path
    while not os.path.lexists(parent):
        parent = parent.parent
    if os.path.islink(parent) and not os.path.exists(parent):
        _refuse(f"{what} = {str(path)!r} cannot be created: {str(parent)!r} is a dangling symbolic link")
    return parent


def _prove_writable(directory: Path, path: Path, what: str, hint: str = "") -> None:
    """Create and remove a file in `directory`: the only test that a write will really succeed
    (os.access misjudges root, read-only mounts, /proc and ACLs)."""
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".qfdjax-probe.", suffix=".tmp")
    except OSError as err:
        _refuse(f"{what} = {str(path)!r} cannot be written: {str(directory)!r}: {err.strerror}" + hint)
    os.close(fd)
    os.unlink(probe)


def check_output_dir(path, what: str = "out") -> Path:
    """`path` as a directory we can create and write, or an InputError naming it (before any work).

    Refused: a path too long for the filesystem, a symbolic link (qfdjax writes
    nothing through links), a file or special file, and a place where creating
    a file fails (proved by creating and removing one in the nearest existing
    directory: nothing is left behind)."""
    from .errors import InputError

    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InputError(f"{what} = {path!r} is invalid: give a directory path")
    path = Path(path)
    _check_name_lengths(path, what)
    if os.path.islink(path):
        raise InputError(f"{what} = {str(path)!r} is a symbolic link: give the directory itself")
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} = {str(path)!r} is a file: give a directory")
    parent = _nearest_existing(path, what)
    if not parent.is_dir():
        raise InputError(f"{what} = {str(path)!r} cannot be created: {str(parent)!r} is a file")
    if _read_only_filesystem(parent):
        raise InputError(f"{what} = {str(path)!r} cannot be written: {str(parent)!r} is on a read-only filesystem")
    _prove_writable(parent, path, what)
    return path


def check_cache_dir(path) -> None:
    """The compile cache's directory must be creatable and writable: JAX only warns about a bad one, and
    every process then compiles from scratch (3x slower).  A link is fine here: the cache is the user's."""
    from .errors import InputError

    what = "QFDJAX_CACHE_DIR"
    hint = "set it to a writable directory, or to 0 to turn the compile cache off"
    path = Path(path)
    _check_name_lengths(path, what)
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"{what} = {str(path)!r} is not a directory: {hint}")
    parent = _nearest_existing(path, what)
    if not os.path.isdir(parent):
        raise InputError(f"{what} = {str(path)!r} cannot be created: {str(parent)!r} is a file; {hint}")
    _prove_writable(parent, path, what, f"; {hint}")


def check_output_file(path, what: str = "out") -> Path:
    """`path` as a file we can write (its directory exists or can be made), checked before any work.

    An existing target must be a regular file: a FIFO, device or /dev/stdout
    would be replaced by a regular file (or block), a link would be replaced."""
    from .errors import InputError

    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InputError(f"{what} = {path!r} is invalid: give a file path")
    path = Path(path)
    _check_name_lengths(path, what)
    if path.is_dir():
        raise InputError(f"{what} = {str(path)!r} is a directory: give a file name")
    if os.path.islink(path):
        raise InputError(f"{what} = {str(path)!r} is a symbolic link: give the file itself")
    if os.path.lexists(path) and not path.is_file():
        raise InputError(f"{what} = {str(path)!r} is not a regular file (a FIFO, socket or device): give a file name")
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
    from .integrity import json_text

    text = json_text(_to_jsonable(data))
    _atomic_write(path, lambda h: h.write(text.encode()))


def atomic_write_bytes(path, data: bytes) -> None:
    _atomic_write(path, lambda h: h.write(data))


def write_text(path, text: str) -> None:
    _atomic_write(path, lambda h: h.write(text.encode()))


def save_figure(fig, path, **savefig_kwargs) -> None:
    """A matplotlib figure written atomically (never through a link planted at `path`), in the
    format its suffix names."""
    import io as _io

    buffer = _io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", **savefig_kwargs)
    atomic_write_bytes(path, buffer.getvalue())


def write_npz(path, **arrays) -> None:
    _atomic_write(path, lambda h: np.savez(h, **arrays))


def run_metadata() -> dict:
    """Versions, device and host, for every result file."""
    import jax

    versions = {"qfdjax": _version("qfdjax"), "python": sys.version.split()[0], "numpy": np.__version__}
    # Read from the installed metadata: importing SciPy just to print its version
    # costs a second of start-up.
    for name in ("jax", "jaxlib", "equinox", "jaxtyping", "scipy"):
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
        "x64": bool(jax.config.read("jax_enable_x64")),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
