"""A scan's figures drawn by worker processes, started when the scan starts.

Why: matplotlib's import and font set-up (~0.5 s) and four figures (~1.5 s)
were the largest cost of a warm 16x10 scan, all on one core while the other
idled.  Workers started with the scan import matplotlib while the fits run, and
then draw two figures each in parallel.  Plotting is pure output: a worker that
fails is reported, never fatal, and the figures are redrawn by `qfdjax report`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .record import figure_files

# Heaviest figure first, so two workers finish together.
ORDER = ("parameter_maps", "identifiability", "chi2_map", "profiles")


def _follow_parent(parent: int) -> None:
    """End this worker when the scan's process is gone (killed, or ended by JAX's runtime).

    Without it an orphaned worker waits on its task queue forever, and holds
    open whatever the scan's stderr was (a pipe someone may be reading to EOF).
    A worker told to stop also leaves without Python's teardown of matplotlib
    (0.1-0.2 s that the scan would otherwise wait for when it closes the pool).
    """
    import atexit
    import os
    import sys
    import threading
    import time

    def leave():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    atexit.register(leave)

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


@contextlib.contextmanager
def _main_script_hidden():
    """Start workers without re-running the parent's __main__ in them.

    A spawned worker re-imports the parent's main script, which runs a library
    user's unguarded `qfdjax.run_scan(...)` again in every worker (and `python -`
    has no script to import: the pool breaks).  The workers only need qfdjax's
    own plotting, so the main script is hidden while they start.
    """
    main = sys.modules.get("__main__") or sys.modules[__name__]
    saved = {name: getattr(main, name) for name in ("__file__", "__spec__") if hasattr(main, name)}
    try:
        if "__file__" in saved:
            del main.__file__
        if "__spec__" in saved:
            main.__spec__ = None
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)


def _warm_up() -> None:
    from . import plots  # noqa: F401  (imports matplotlib and sets up its fonts)


def _draw(name: str, record: dict, path: str) -> None:
    from . import plots

    getattr(plots, f"plot_{name}")(record, path)


class PlotPool:
    def __init__(self, workers: int = 2, fmt: str = "png"):
        self.workers = workers
        self.files = figure_files(fmt)
        self.executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> "PlotPool":
        try:
            with _main_script_hidden():
                self.executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                    initializer=_follow_parent, initargs=(os.getpid(),))
                # One task per worker starts them all now (they are spawned on demand).
                for _ in range(self.workers):
                    self.executor.submit(_warm_up)
        except (OSError, RuntimeError):
            self.executor = None  # no processes to spare: draw in this one
        return self

    def __exit__(self, *exc):
        if self.executor is not None:
            # Waited for even on Ctrl-C: a pool left behind at exit leaks its semaphores (the resource tracker
            # then prints a warning after the one-line message).  Its workers end within a figure.
            self.executor.shutdown(wait=True, cancel_futures=True)

    def start(self, record: dict, out_dir, names=ORDER) -> list:
        """Begin drawing `names` now (the scan may still be finishing other work); [] without workers."""
        if self.executor is None:
            return []
        try:
            return [(name, self.executor.submit(_draw, name, record, str(Path(out_dir) / self.files[name])))
                    for name in names]
        except RuntimeError:  # a broken pool (BrokenProcessPool is one): draw in this process instead
            self.executor = None
            return []

    def plot_scan(self, record: dict, out_dir, started=()) -> dict:
        """Draw every figure not in `started` (from `start`), then wait for all of them.

        Without workers every figure is drawn in this process; a figure a worker
        failed on is redrawn here, and reported if it fails again.
        """
        out = Path(out_dir)
        begun = {name for name, _ in started}
        drawing = dict(started)
        drawing.update(self.start(record, out, [n for n in ORDER if n not in begun]))
        for name in ORDER:
            if name not in drawing:
                _draw(name, record, str(out / self.files[name]))
                continue
            try:
                drawing[name].result()
            except Exception as err:  # noqa: BLE001 - a figure is output: redraw it here, or say why not
                _redraw_here(name, record, out / self.files[name], err)
        return dict(self.files)


def _redraw_here(name: str, record: dict, path: Path, worker_error: Exception) -> None:
    """Draw in this process a figure a worker failed on; a second failure is reported, not raised."""
    try:
        _draw(name, record, str(path))
    except Exception as err:  # noqa: BLE001
        print(f"qfdjax: could not draw {path.name}: {err} (worker: {worker_error}); "
              f"`qfdjax report` redraws it", file=sys.stderr)
