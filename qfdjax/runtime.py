"""Process-wide JAX settings qfdjax relies on: float64 and the persistent compile cache.

Both are set through JAX's environment variables when JAX has not been
imported yet (so setting them costs no JAX import: `qfdjax report` never loads
JAX), and through `jax.config` when it has.  The compile cache lives in
QFDJAX_CACHE_DIR (default ~/.cache/qfdjax/xla; "0" turns it off).  Every
kernel is cached, however quick to compile: on two CPU cores even the small
ones add up to seconds per process.

On CPU, three of XLA's settings are changed (see XLA_CPU_FLAGS) before its backend starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "qfdjax", "xla")


def cache_dir() -> str | None:
    path = os.environ.get("QFDJAX_CACHE_DIR", DEFAULT_CACHE_DIR)
    return None if path == "0" else path


# XLA:CPU settings for kernels like ours: thousands of lanes, each a chain of small elementwise steps
# (benchmarks/xla_cpu_flags.py measures them side by side; README there).  Each changes how a kernel
# is compiled or scheduled, never what it computes beyond the order of a reduction's additions.
# - YNNPACK library fusions off: XLA hands small reductions and dots (a (512, 3, 9) Jacobian's
#   sums) to YNNPACK, one library call each, which breaks the fused loops around them, and whose
#   results depended on the batch size (a scan's numbers differed at rounding between chunkings;
#   without it they are bitwise equal: tests/test_guarantees.py);
# - 512-bit vectors where the CPU has them (XLA prefers 256 by default);
# - no concurrency-optimised schedule: it spreads a kernel's independent steps over the thread pool,
#   and on a few cores the hand-offs (futex wake-ups) cost more than the steps.
XLA_CPU_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=", "--xla_cpu_prefer_vector_width=512",
                 "--xla_cpu_enable_concurrency_optimized_scheduler=false")
# jaxlib releases (major, minor) whose XLA is known to have these flags: XLA aborts the process on a flag it
# does not know, and experimental flags come and go, so any other jaxlib keeps XLA's defaults until checked
# (run benchmarks/xla_cpu_flags.py with it, then add it here).
XLA_CPU_FLAGS_JAXLIB = frozenset({(0, 10)})


def _jaxlib_release() -> tuple[int, int] | None:
    try:
        from jaxlib.version import __version__  # 10 ms: no JAX import
    except ImportError:
        return None
    try:
        major, minor = (int(part) for part in __version__.split(".")[:2])
    except ValueError:
        return None
    return major, minor


def xla_flags_with_ours(flags: str, jaxlib: tuple[int, int] | None) -> str:
    """`flags` (an XLA_FLAGS value) with each of XLA_CPU_FLAGS the user did not set, where jaxlib knows them."""
    if jaxlib not in XLA_CPU_FLAGS_JAXLIB:
        return flags
    named = {item.split("=", 1)[0] for item in flags.split()}
    extra = [flag for flag in XLA_CPU_FLAGS if flag.split("=", 1)[0] not in named]
    return " ".join([flags, *extra]).strip() if extra else flags


def _set_xla_cpu_flags() -> None:
    """Add XLA_CPU_FLAGS to XLA_FLAGS, each unless the user set that flag (QFDJAX_XLA_CPU_FLAGS=0: none).

    XLA reads XLA_FLAGS once, when its first backend starts: a process that started JAX's backends
    before importing qfdjax keeps its own settings."""
    if os.environ.get("QFDJAX_XLA_CPU_FLAGS") == "0":
        return
    if "jax" in sys.modules:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            return
    flags = os.environ.get("XLA_FLAGS", "")
    ours = xla_flags_with_ours(flags, _jaxlib_release())
    if ours != flags:
        os.environ["XLA_FLAGS"] = ours


def configure_jax() -> None:
    """float64 always; the persistent compile cache unless QFDJAX_CACHE_DIR=0 or the user set one; the
    XLA:CPU settings of XLA_CPU_FLAGS."""
    _set_xla_cpu_flags()
    settings: dict[str, bool | float | int] = {"jax_enable_x64": True}
    path = cache_dir()
    if path is not None:
        settings["jax_persistent_cache_min_compile_time_secs"] = 0.0
        settings["jax_persistent_cache_min_entry_size_bytes"] = 0
    jax = sys.modules.get("jax")
    if jax is None:
        for name, value in settings.items():
            os.environ.setdefault(name.upper(), str(value) if not isinstance(value, bool) else "1")
        if path is not None:
            os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", path)
        return
    for name, value in settings.items():
        jax.config.update(name, value)
    if path is not None and not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", path)


def import_in_background(*modules: str) -> None:
    """Start importing third-party modules on a daemon thread, for a figure drawn after the fits.

    Why: matplotlib's import (~0.5 s on two cores) would otherwise sit on the main thread before or after
    the fits; on a thread it runs while the main thread waits on compiled calls (which release the GIL).
    Only modules that import nothing of qfdjax's: two threads importing the same package of ours could
    wait on each other's module locks.  A failure is left for the main thread's own import to report.
    """
    def load():
        import importlib

        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - reported where the main thread imports it
                continue

    threading.Thread(target=load, name="qfdjax-import", daemon=True).start()


def interactive_progress() -> bool:
    """Whether a progress bar has somewhere to be drawn: a terminal on stderr, or a Jupyter kernel.

    A Jupyter kernel is recognised by its running shell, not by ipykernel being importable or
    imported (a test runner that executes notebooks imports it too, and has no one to show a bar).
    """
    if sys.stderr.isatty():
        return True
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def progress_callback(total: int, unit: str, desc: str | None = None):
    """`progress(done, total)` drawing a tqdm.auto bar where `interactive_progress()`, else None.

    The bar is created at the first report, so a command refused before any work draws nothing.
    """
    if not interactive_progress():
        return None
    bar: list = []

    def progress(done, total_now=total):
        if not bar:
            from tqdm.auto import tqdm

            bar.append(tqdm(total=total_now, unit=unit, desc=desc, leave=False))
        bar[0].update(done - bar[0].n)

    return progress


# The signals received inside `interrupts_remembered` (None outside it).
_RECEIVED: list[int] | None = None


@contextlib.contextmanager
def interrupts_remembered():
    """SIGTERM (a batch system's kill) becomes KeyboardInterrupt, so it ends a command like Ctrl-C,
    and both signals are remembered (the yielded list turns true).

    Why remembered: an interrupt raised while CPython runs a garbage-collection callback (JAX
    registers one) is printed as "Exception ignored" and lost, and the command would run on to its
    end; long loops call `check_interrupted` at their natural boundaries.  Re-entrant: an inner use
    shares the outer one's list.  An ignored (or the caller's own) Ctrl-C handling is left as it is.
    """
    global _RECEIVED
    if _RECEIVED is not None:
        yield _RECEIVED
        return
    received: list[int] = []

    def handler(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        if sig == signal.SIGINT and signal.getsignal(sig) is not signal.default_int_handler:
            continue
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not in the main thread
            pass
    # A KeyboardInterrupt raised inside a callback CPython cannot propagate from (JAX's garbage-collection
    # callback) reaches sys.unraisablehook, which would print a 7-line "Exception ignored in ..." report
    # before the command's own one-line message; it is already remembered, so it is dropped silently.
    outer_hook = sys.unraisablehook

    def quiet_interrupts(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt) or unraisable.exc_type is KeyboardInterrupt:
            if not received:
                received.append(signal.SIGINT)
            return
        outer_hook(unraisable)

    sys.unraisablehook = quiet_interrupts
    _RECEIVED = received
    try:
        yield received
    finally:
        _RECEIVED = None
        sys.unraisablehook = outer_hook
        for sig, old in previous.items():
            signal.signal(sig, old)


def check_interrupted() -> None:
    """Raise KeyboardInterrupt if a signal arrived that nothing has acted on (see interrupts_remembered)."""
    if _RECEIVED:
        raise KeyboardInterrupt


# --- Where the wall time goes (DESIGN.md 3b) ---------------------------------------------------------------
# Seconds the main thread spent in each category.  Time goes to the innermost open category (a kernel load
# inside a device call is a load, not device time); `host` is what is left of the wall.  Only `device`
# shrinks on an accelerator, so this split is what a projection to one starts from.
ACCOUNTS = ("imports", "kernel_load", "device", "io")
_SPENT: dict[str, float] = dict.fromkeys(ACCOUNTS, 0.0)
_OPEN: list[list] = []  # [category, started] of the open categories, innermost last
_WALL_START: float | None = None


def process_age() -> float | None:
    """Seconds since this process started (Linux's /proc: interpreter start-up included), or None."""
    try:
        with open("/proc/self/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return max(age, 0.0)


def start_accounting() -> None:
    """Start the wall-time split at the process's own start: what ran so far (the interpreter, qfdjax's
    command-line modules) counts as imports."""
    global _WALL_START
    age = process_age() or 0.0
    _WALL_START = time.perf_counter() - age
    _SPENT.update(dict.fromkeys(ACCOUNTS, 0.0), imports=age)
    _OPEN.clear()


@contextlib.contextmanager
def spending(category: str):
    """Count the main thread's time inside the block as `category` (one of ACCOUNTS).

    Other threads (background kernel exports, plot workers) are not counted: the wall is what the
    user waits for, and only the main thread's waiting is on it."""
    if _WALL_START is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    now = time.perf_counter()
    if _OPEN:
        outer = _OPEN[-1]
        _SPENT[outer[0]] += now - outer[1]
    _OPEN.append([category, now])
    try:
        yield
    finally:
        now = time.perf_counter()
        name, started = _OPEN.pop()
        _SPENT[name] += now - started
        if _OPEN:
            _OPEN[-1][1] = now


def account() -> dict | None:
    """The wall so far and its split {wall, imports, kernel_load, device, host, io} in seconds, with the
    device share of the time past imports; None where no command started the accounting (the Python API)."""
    if _WALL_START is None:
        return None
    now = time.perf_counter()
    spent = dict(_SPENT)
    for name, started in _OPEN:
        spent[name] += now - started
    wall = now - _WALL_START
    out: dict[str, float | None] = {"wall": wall, **spent, "host": max(wall - sum(spent.values()), 0.0)}
    past_imports = wall - spent["imports"]
    out["device_share_past_imports"] = spent["device"] / past_imports if past_imports > 0 else None
    return out


def with_account(timings: dict | None) -> dict:
    """`timings` with the wall-time split added (unchanged where no command started the accounting)."""
    split = account()
    return dict(timings or {}) | (split or {})
