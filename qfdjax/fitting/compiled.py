"""Kernels traced once per shape bucket, then reused from disk (`jax.export`).

Why: even when XLA's persistent compile cache hits, every new process
re-traces and re-lowers each kernel before it can look the executable up, and
for the fit kernel and its Hessian diagnostics that is 1-3 CPU-seconds on two
cores: more than the fit.  A serialised `jax.export` artifact skips both
steps: deserialising and lowering it takes milliseconds, and the compile then
hits the persistent cache.

An artifact is keyed by the kernel's name, a hash of qfdjax's own source, the
JAX version and backend, the arguments' pytree structure (which carries every
static choice: profile family, observables, numerics kind, optimiser
settings) and the arrays' shapes and dtypes.  Array values (bounds, masses,
seed-grid tables, the points themselves) are inputs, never part of the key, so
one artifact serves every bound, grid and start that fits its shape bucket.
With several devices the kernels are sharded and go through `jax.jit`
instead (exporting sharded code ties it to one device count).

Why this file is long: it is one concept, how a kernel gets from code to an
executable (key, export, load, prefetch), around one piece of shared state
(the loaded and pending kernels and their lock); kernel_memory.py, which only
submits loads, lives apart.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sys
import threading
from pathlib import Path

import jax
import numpy as np

from ..io import atomic_write_bytes
from ..runtime import cache_dir, spending

_LOADED: dict = {}
_NAMES: dict = {}
_GUESSED: set = set()
_PENDING: dict = {}
# Keys whose background load compiles (no artifact when it was asked for): not ready until it is done.
_COMPILING: set = set()
_LOCK = threading.Lock()
_POOL = None
# Two prefetch threads, one background compile at a time.  Loading a cached kernel (~0.135 s on 2 cores,
# mostly XLA's executable load) overlaps the imports and the other loads: 1000 toys warm 2.43 -> 2.25 s,
# a 64 x 64 scan 4.56 -> 4.48 s, the 16 x 10 scan unchanged (means of alternating runs, 2 cores).  Two
# compiles at once beside a cold 256 x 256 scan's fits made it slower (51.0 against 47.0 s); with the
# one-compile slot it was 45.9 s against 48.1 s.
PREFETCH_THREADS = 2
_COMPILE_SLOT = threading.Lock()


@functools.lru_cache(maxsize=1)
def _source_hash() -> str:
    """Hash of every qfdjax source file: an artifact never outlives the code that traced it."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def bucket(n: int, smallest: int = 1, base: int = 4) -> int:
    """The shape bucket of a batch of n: `smallest` times the next power of `base`.

    Powers of four by default: every bucket is one more kernel to compile on a
    machine's first run (1-2 s each on two cores), and padding a batch by up
    to 4x costs less than that where it happens once per chunk.  The LM rounds,
    which re-pack shrinking sets of lanes many times per chunk, use powers of
    two (15 % faster fits on a 64x64 scan, measured).
    """
    size = max(1, int(smallest))
    while size < n:
        size *= base
    return size


def _is_array(x) -> bool:
    # A ShapeDtypeStruct stands for an array wherever only shapes matter (a prefetch: see `prefetch`).
    return isinstance(x, (jax.Array, np.ndarray, np.generic, jax.ShapeDtypeStruct))


def _stable_repr(x) -> str:
    """repr without memory addresses: functions by their qualified name."""
    if callable(x) and hasattr(x, "__qualname__"):
        return f"{getattr(x, '__module__', '')}.{x.__qualname__}"
    text = repr(x)
    if " at 0x" in text:
        raise TypeError(f"static argument {text} has no stable identity: make it an array or a Module")
    return text


_KEYS: dict = {}


def _key(name: str, treedef, static_leaves, dynamic) -> str:
    """The kernel's cache key: its code, JAX, the backend, the argument structure, static values and shapes.

    Remembered per (name, structure, static values, shapes): a scan calls its kernels thousands of times
    and spelling the structure out and hashing it took 0.24 ms a call (0.5 s of a 128 x 128 scan's host)."""
    statics = tuple(_stable_repr(x) for x in static_leaves)
    shapes = tuple((x.shape, x.dtype.str) if hasattr(x, "dtype") else (np.shape(x), np.result_type(x).str)
                   for x in dynamic)
    memo: tuple | None = (name, treedef, statics, shapes)
    try:
        key = _KEYS.get(memo)
    except TypeError:  # a structure whose static data cannot be hashed: spelled out every time
        memo, key = None, None
    if key is None:
        parts = [name, _source_hash(), jax.__version__, jax.default_backend(), str(treedef), ",".join(statics)]
        parts += [f"{shape}:{np.dtype(dtype)}" for shape, dtype in shapes]
        key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]
        if memo is not None:
            _KEYS[memo] = key
    return key


def _specs(dynamic) -> list:
    return [jax.ShapeDtypeStruct(np.shape(x), np.result_type(x)) for x in dynamic]


def _batch(specs) -> int:
    """The leading (points or lanes) size of a kernel call (its argument specs)."""
    return specs[0].shape[0] if specs and specs[0].shape else 1


def _split(name: str, args):
    leaves, treedef = jax.tree_util.tree_flatten(args)
    mask = [_is_array(x) for x in leaves]
    dynamic = [x for x, m in zip(leaves, mask, strict=True) if m]
    static_leaves = [x for x, m in zip(leaves, mask, strict=True) if not m]
    return _key(name, treedef, static_leaves, dynamic), leaves, mask, treedef, dynamic


def prefetch(name: str, fn, *args, guessed: bool = False) -> None:
    """Start getting fn's kernel for arrays shaped like `args` ready in a background thread.

    Why: a fit needs its diagnostics kernel only after its LM kernel has run.
    Loading it (warm: ~0.3 s of lowering and deserialising) or compiling it
    (cold: seconds) meanwhile uses the second core instead of waiting.  Only
    kernels that will surely be called are prefetched: the thread pool is
    joined when the process exits.  Array arguments may be given as
    `jax.ShapeDtypeStruct`s (`lanes_shaped`): a load needs their shapes only, and a
    caller that asks every round need not gather arrays for a kernel loaded long ago.  guessed: a kernel
    that may not be used after all (see `submit_prefetch`).
    """
    if not prefetching():
        return
    key, leaves, mask, treedef, dynamic = _split(name, args)
    if key not in _LOADED and key not in _PENDING and not _on_disk(key):
        _COMPILING.add(key)
    submit_prefetch(key, _ready, name, key, fn, leaves, mask, treedef, dynamic, guessed=guessed)


def prefetching() -> bool:
    """Whether kernels are readied in the background (they are stored for the next process: needs a cache)."""
    return cache_dir() is not None and not os.environ.get("QFDJAX_NO_PREFETCH")


def kernel_ready(name: str, fn, *args) -> bool:
    """Whether calling fn on arrays shaped like `args` compiles nothing: its kernel is loaded, or its
    artifact is on disk and no background compile of it is still running (an artifact is written just
    before its compile, whose executable then goes to the compile cache).  Without background loads every
    kernel counts as ready: nothing else could make it so."""
    if not prefetching():
        return True
    key = _split(name, args)[0]
    if key in _LOADED:
        return True
    with _LOCK:
        pending = _PENDING.get(key)
    if pending is not None and key in _COMPILING:  # its artifact is written before the compile ends
        return pending.done()
    return _on_disk(key)


def _on_disk(key: str) -> bool:
    path = artifact_path(key)
    return path is not None and path.exists()


def lanes_shaped(tree, lanes: int, axes=0):
    """`tree` with each leaf that `axes` (vmap in_axes: 0 or None per leaf) maps over its leading axis
    replaced by a ShapeDtypeStruct of `lanes` lanes: arguments for `prefetch` built from one lane's."""
    def widen(axis, leaf):
        if axis != 0 or not _is_array(leaf):
            return leaf
        return jax.ShapeDtypeStruct((lanes,) + tuple(np.shape(leaf))[1:], np.result_type(leaf))

    if isinstance(axes, int):  # one axis for every leaf (not `== 0`: axes may be a Module)
        return jax.tree_util.tree_map(lambda leaf: widen(axes, leaf), tree)
    return jax.tree_util.tree_map(widen, axes, tree, is_leaf=lambda x: x is None)


def submit_prefetch(key: str, task, *args, guessed: bool = False) -> None:
    """task(*args) -> (compiled call, origin) on a prefetch thread, as key's pending load (unless it has one).

    guessed: a kernel that may not be used (kernel_memory.py): nobody waits for it at exit."""
    with _LOCK:
        if key in _LOADED or key in _PENDING:
            return
        global _POOL
        if _POOL is None:
            from concurrent.futures import ThreadPoolExecutor

            _POOL = ThreadPoolExecutor(max_workers=PREFETCH_THREADS, thread_name_prefix="qfdjax-prefetch")
        _PENDING[key] = _POOL.submit(task, *args)
        if guessed:
            _GUESSED.add(key)


def wait_for_prefetches() -> None:
    """Block until every kernel being readied in the background is done (or has failed); a guessed one
    (already in the compile cache, perhaps never used) is cancelled if it has not started."""
    with _LOCK:
        pending = [f for k, f in _PENDING.items() if k not in _GUESSED or not f.cancel()]
    for future in pending:
        try:
            future.result()
        except Exception:  # noqa: BLE001 - a failed prefetch is redone (and reported) where it is used
            pass


def _ready(name, key, fn, leaves, mask, treedef, dynamic):
    with _COMPILE_SLOT if key in _COMPILING else contextlib.nullcontext():
        call, origin = _load_or_export(name, key, fn, leaves, mask, treedef, dynamic)
    return call, origin + " (prefetched)"


# A single fit's kernels (its 8 LM lanes, its one point of diagnostics) run for
# milliseconds: on CPU they are compiled without LLVM's optimisation passes and
# with XLA's older loop emitters, which roughly halves their compile time
# (measured, jax 0.10.2, 2 cores: the 8-lane LM round 0.6 s instead of 1.6 s, the
# diagnostics 0.65 s instead of 1.95 s) for a few times slower run time (30 us
# instead of 6 us per lane-step: 20 ms more for a whole fit).
# Scans never use these shapes for their LM rounds (their smallest lane bucket is
# 16, see scans/solver.py), so a scan's numbers never depend on which kernel a lane
# landed in; DE and chi2 kernels keep the full optimisation everywhere.
QUICK_COMPILE_BATCH = 8
QUICK_COMPILE_KERNELS = ("lm_round", "diagnostics")
QUICK_COMPILE_OPTIONS = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


def quick_compiled(name: str, batch: int) -> bool:
    """Whether kernel `name` for `batch` lanes gets QUICK_COMPILE_OPTIONS (its last bits may differ)."""
    return name in QUICK_COMPILE_KERNELS and batch <= QUICK_COMPILE_BATCH and jax.default_backend() == "cpu"


def _compiler_options(name, specs) -> dict | None:
    """A single fit's kernels on CPU get QUICK_COMPILE_OPTIONS; everything else XLA's defaults."""
    return QUICK_COMPILE_OPTIONS if quick_compiled(name, _batch(specs)) else None


# Lowering an exported module on CPU makes JAX initialise its LAPACK bindings
# whether or not the module calls LAPACK, and that imports SciPy's linear algebra
# (0.13 s, a tenth of a warm `qfdjax fit`).  qfdjax's kernels call no LAPACK (see
# optimize/lm.py, solve_damped), so for a module whose serialised form names no
# LAPACK target the initialisation is skipped; any module that does name one, and
# any ordinary jit lowering of a linear-algebra primitive, still initialises it.
_LOWERING = threading.local()


def _install_lapack_guard() -> None:
    try:
        from jax._src.export import _export

        original = _export._ensure_backends_initialized
    except (ImportError, AttributeError):  # another JAX: only costs the SciPy import
        return

    def ensure_backends_initialized(platforms):
        if not getattr(_LOWERING, "lapack_free", False):
            original(platforms)

    _export._ensure_backends_initialized = ensure_backends_initialized


_install_lapack_guard()


def _lower(exported, specs):
    _LOWERING.lapack_free = b"lapack_" not in bytes(exported.mlir_module_serialized)
    try:
        return jax.jit(exported.call).lower(*specs)
    finally:
        _LOWERING.lapack_free = False


# When a list, every kernel call is also recorded here as (name, fn, args): `fitting/lowering.py`
# re-exports exactly the kernels the commands run, for another platform.
RECORDER: list | None = None


def flat_function(fn, leaves, mask, treedef):
    """fn over the dynamic (array) leaves only, the static ones closed over: what is exported."""
    def flat(*dynamic_leaves):
        it = iter(dynamic_leaves)
        full = [next(it) if m else x for x, m in zip(leaves, mask, strict=True)]
        return fn(*jax.tree_util.tree_unflatten(treedef, full))

    return flat


def call_compiled(name: str, fn, *args):
    """fn(*args), compiled once per key and (with the compile cache on) kept on disk.

    `args` may mix arrays with static structure (equinox modules, Python
    numbers); fn must return a dict or tuple of arrays.
    """
    if RECORDER is not None:
        RECORDER.append((name, fn, args))
    key, leaves, mask, treedef, dynamic = _split(name, args)
    call = _LOADED.get(key)
    if call is None:
        import time

        t0 = time.perf_counter()
        with spending("kernel_load"):
            with _LOCK:
                pending = _PENDING.pop(key, None)
            call, origin = None, None
            # Still queued behind other background loads (guessed ones, say): loaded here instead of waiting.
            if pending is not None and not pending.cancel():
                try:
                    call, origin = pending.result()
                except Exception:  # noqa: BLE001 - a failed prefetch is redone here, where errors surface
                    call = None
            if call is None:
                call, origin = _load_or_export(name, key, fn, leaves, mask, treedef, dynamic)
        _LOADED[key] = call
        _NAMES[key] = name
        if os.environ.get("QFDJAX_VERBOSE"):
            # The first call compiles, or loads the executable from the persistent cache.
            with spending("device"):
                out = jax.block_until_ready(call(*dynamic))
            print(f"qfdjax: kernel {name} (batch {_batch(_specs(dynamic))}) {origin}, first call done in "
                  f"{time.perf_counter() - t0:.2f} s", file=sys.stderr, flush=True)
            return out
    # Waited for here, not where the host first reads the results: the time is then the device's in the
    # wall-time split (runtime.account).  Every caller reads its results at once, so nothing overlaps less.
    with spending("device"):
        return jax.block_until_ready(call(*dynamic))


# How a process gets a kernel it has run before (benchmarks/kernel_load.py measures them side by side):
# "export" (the default) deserialises the jax.export artifact, lowers it and lets XLA's persistent cache
# supply the executable; "jit" traces and lowers anew, as plain jax.jit with the persistent cache does.
# (Serialised executables, jax.experimental.serialize_executable, were the third candidate: on CPU with
# jaxlib 0.10.2 a reloaded executable fails at its first call, "Function compare_convert_fusion not found".)
KERNEL_LOAD = os.environ.get("QFDJAX_KERNEL_LOAD", "export")


def _load_or_export(name, key, fn, leaves, mask, treedef, dynamic):
    """The compiled kernel (from the persistent cache when it has it) and where its export came from."""
    if KERNEL_LOAD == "jit":
        return jax.jit(flat_function(fn, leaves, mask, treedef)).lower(*_specs(dynamic)).compile(), "traced (jit)"
    return _compile_exported(name, key, fn, leaves, mask, treedef, dynamic)


def _compile_exported(name, key, fn, leaves, mask, treedef, dynamic):
    exported, origin = _exported(key, fn, leaves, mask, treedef, dynamic)
    call, how = compile_exported(name, exported, _specs(dynamic))
    return call, origin + how


def compile_exported(name: str, exported, specs) -> tuple:
    """The exported kernel lowered and compiled for arguments `specs` (the persistent cache's when it has it)."""
    lowered = _lower(exported, specs)
    options = _compiler_options(name, specs)
    if options is not None:
        try:
            return lowered.compile(compiler_options=options), ", compiled for quick start"
        except Exception:  # noqa: BLE001 - an option this XLA does not know only costs compile time
            pass
    return lowered.compile(), ""


def artifact_path(key: str) -> Path | None:
    """Where kernel `key`'s jax.export artifact lives in the cache (None without a cache)."""
    folder = cache_dir()
    return None if folder is None else Path(folder) / "export" / f"{key}.jaxexport"


def read_artifact(path: Path):
    """An exported kernel read back from its artifact (raises on a damaged one)."""
    return jax.export.deserialize(bytearray(path.read_bytes()))


def _exported(key, fn, leaves, mask, treedef, dynamic):
    path = artifact_path(key)
    if path is not None and path.exists():
        try:
            return read_artifact(path), f"loaded from {path.parent}"
        except Exception:  # noqa: BLE001 - a damaged artifact is rebuilt, never trusted
            pass

    exported = jax.export.export(jax.jit(flat_function(fn, leaves, mask, treedef)))(*_specs(dynamic))
    if path is not None:
        try:
            atomic_write_bytes(path, bytes(exported.serialize()))
        except (OSError, ImportError):
            pass  # a read-only cache (or no flatbuffers) only costs speed
    return exported, "traced and exported"


def clear_memory() -> None:
    """Forget loaded kernels (tests use it to exercise the disk path)."""
    _LOADED.clear()
    _NAMES.clear()
