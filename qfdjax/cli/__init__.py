"""Command line: `qfdjax energy | fit | relax | scan | report | merge | toys | forecast | sensitivity | bench | verify`.

A thin layer over functions of the same names in the package; every command's
output is also a Python return value.  Bad input exits with status 2 and a
one-line message before any work starts, leaving no partial output file.
"""

from __future__ import annotations

import signal
import sys


def _interrupted_while_starting(signum, frame):
    # Ctrl-C before main() runs (while modules import) ends quietly, like Ctrl-C later.
    print("qfdjax: interrupted", file=sys.stderr)
    sys.exit(130)


def _terminated_while_starting(signum, frame):
    # SIGTERM before main() runs (a batch system cancelling a job that is still importing JAX):
    # one line and the conventional status 128 + 15, not a silent death by signal.
    print("qfdjax: terminated while starting (SIGTERM)", file=sys.stderr)
    sys.exit(143)


def _exit_lost_in_a_callback(unraisable):
    # The starting handlers' sys.exit, raised inside a callback CPython cannot propagate from (JAX's
    # garbage-collection callback, registered by `import jax`), would be printed as "Exception ignored"
    # and lost: their one line is already printed, so the process ends here with their status.
    if isinstance(unraisable.exc_value, SystemExit):
        import os

        sys.stderr.flush()
        os._exit(int(unraisable.exc_value.code or 0))
    sys.__unraisablehook__(unraisable)


# Only when this process is the qfdjax command itself, never inside a library user's program.
if sys.argv and sys.argv[0].rsplit("/", 1)[-1] in ("qfdjax", "__main__.py"):
    sys.unraisablehook = _exit_lost_in_a_callback
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupted_while_starting)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated_while_starting)

import argparse  # noqa: E402
import re  # noqa: E402

from ..errors import InputError  # noqa: E402

from .energy import add_energy  # noqa: E402
from .fit import add_fit  # noqa: E402
from .relax import add_relax  # noqa: E402
from .scan import add_merge, add_report, add_scan  # noqa: E402
from .studies import add_bench, add_sensitivity  # noqa: E402
from .forecast import add_forecast  # noqa: E402
from .toys import add_toys  # noqa: E402
from .verify import add_verify  # noqa: E402
from .sample import add_sample  # noqa: E402
from .compare import add_compare  # noqa: E402

# One entry per subcommand, in the order `--help` lists them; each adds its parser
# and sets `run`.  Projects extending qfdjax append to EXTRA_COMMANDS.
COMMANDS = (add_energy, add_fit, add_relax, add_scan, add_report, add_merge, add_toys, add_forecast, add_sensitivity,
            add_sample, add_compare, add_bench, add_verify)
EXTRA_COMMANDS: list = []


# argparse takes "-inf" or "-1e-3" after a flag for another flag; numbers like these are values.
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)$", re.IGNORECASE)


# The long commands take --trace DIR: a jax.profiler trace of the whole command (TensorBoard/Perfetto).
# (Not --profile: that flag names the density profile family.)
PROFILED_COMMANDS = ("scan", "report", "toys", "forecast", "merge", "sensitivity", "sample")


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if name in PROFILED_COMMANDS:
                    sub.add_argument("--trace", metavar="DIR",
                                     help="write a jax.profiler trace of the command into DIR (open it with "
                                          "TensorBoard's profile plugin or ui.perfetto.dev)")
                group = sub.add_mutually_exclusive_group()
                group.add_argument("--quiet", "-q", action="store_true",
                                   help="print nothing but errors (results are still written)")
                group.add_argument("--verbose", "-v", action="store_true",
                                   help="also report where each compiled kernel came from and how long it took")


def _accept_negative_numbers(parser: argparse.ArgumentParser) -> None:
    parser._negative_number_matcher = _NEGATIVE_NUMBER
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _accept_negative_numbers(sub)


class _OneLineParser(argparse.ArgumentParser):
    """argparse with its refusals on one line, like every other refusal of qfdjax (status 2).

    argparse prints a 5-line usage block before "invalid int value: '2.5'"; `qfdjax CMD --help`
    still shows the usage."""

    def error(self, message):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _OneLineParser(prog="qfdjax", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"qfdjax {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS + tuple(EXTRA_COMMANDS):
        add(sub)
    _add_verbosity(parser)
    _accept_negative_numbers(parser)
    return parser


# Where each command writes: checked before any work, so a bad --out never costs a fit.
OUTPUT_KINDS = {"energy": "file", "fit": "file", "relax": "file", "bench": "file", "scan": "dir", "merge": "dir",
                "sensitivity": "dir", "toys": "dir", "forecast": "file", "sample": "dir",
                "compare": "file"}


# The files a directory command writes: one that exists as anything but a regular file (a directory, a
# link) is refused before any work, not when the results are written at the end.
OUTPUT_FILES = {"scan": ("scan.json", "scan.npz", "scan.csv"), "merge": ("scan.json", "scan.npz", "scan.csv"),
                "toys": ("toys.json", "toys.npz", "toys.csv", "toys.png"), "sensitivity": ("sensitivity.json",),
                "sample": ("posterior.json", "posterior.nc", "corner.png", "trace.png", "checkpoint.npz")}
# Flags naming a file or directory: given as an empty string, they would silently mean "none".
PATH_FLAGS = ("out", "bounds", "config", "cases", "truth", "dir", "path", "trace", "null", "alt")


def _check_output(args) -> None:
    import os
    from pathlib import Path

    from ..io import check_cache_dir, check_output_dir, check_output_file
    from ..runtime import cache_dir

    for flag in PATH_FLAGS:
        value = getattr(args, flag, None)
        if isinstance(value, str) and not value.strip():
            raise InputError(f"{flag} = {value!r} is empty: give a path")
    kind = OUTPUT_KINDS.get(args.command)
    out = getattr(args, "out", None)
    if kind and out:
        (check_output_file if kind == "file" else check_output_dir)(out, "out")
        for name in OUTPUT_FILES.get(args.command, ()) if kind == "dir" else ():
            target = Path(out) / name
            if os.path.lexists(target) and (os.path.islink(target) or not os.path.isfile(target)):
                raise InputError(f"out = {out!r}: {name} there is not a regular file (a directory or a link): "
                                 f"remove it or choose another --out")
    if args.command != "report" and cache_dir() is not None:
        check_cache_dir(cache_dir())


def _run(args) -> int:
    if getattr(args, "trace", None):
        import jax

        from ..io import check_output_dir

        check_output_dir(args.trace, "trace")
        with jax.profiler.trace(args.trace):
            return _run_unprofiled(args)
    return _run_unprofiled(args)


def _run_unprofiled(args) -> int:
    if getattr(args, "verbose", False):
        import os

        os.environ["QFDJAX_VERBOSE"] = "1"
        try:
            return args.run(args)
        finally:
            os.environ.pop("QFDJAX_VERBOSE", None)
    if getattr(args, "quiet", False):
        import contextlib
        import os

        if hasattr(args, "no_progress"):
            args.no_progress = True
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            return args.run(args)
    return args.run(args)


# Commands whose work runs compiled kernels: JAX and the fit engine are imported before their work starts,
# inside the wall-time split's "imports" (they would be imported anyway, later and uncounted).
KERNEL_COMMANDS = ("energy", "fit", "relax", "scan", "merge", "toys", "forecast", "sensitivity", "bench", "sample", "compare")
# Commands that load last run's kernels on the prefetch thread while they import (fitting/kernel_memory.py).
# `scan` too since XLA runs a kernel on one thread (runtime.XLA_CPU_FLAGS): with its two plot workers the
# prefetch thread used to cost a warm 16x10 scan more device and I/O time than the 0.4-0.5 s of kernel loads
# it hid; now warm 16x10 2.67 -> 2.58 s and 64x64 6.30 -> 5.88 s (medians of 5 and 3 alternating runs).
REMEMBERING_COMMANDS = ("fit", "toys", "forecast", "sensitivity", "report", "scan")


def _import_engine(args) -> None:
    from ..runtime import spending

    uses_kernels = args.command in KERNEL_COMMANDS or (
        args.command == "report" and (getattr(args, "fc", None) is not None or getattr(args, "refit_intervals", False)))
    if uses_kernels:
        with spending("imports"):
            import jax  # noqa: F401

            # A team's JAX must not touch its backend before jax.distributed starts.
            if args.command in REMEMBERING_COMMANDS and not _in_a_team(args):
                from ..fitting.kernel_memory import prefetch_remembered

                prefetch_remembered(args.command)
            import qfdjax.fitting.fit  # noqa: F401


def _in_a_team(args) -> bool:
    """Whether the command may join a jax.distributed team (its flags, or the QFDJAX_* team variables)."""
    import os

    from ..scans.team import ENVIRONMENT

    flags = ("coordinator", "num_processes", "process_id", "distributed")
    return any(getattr(args, f, None) for f in flags) or any(os.environ.get(v) for v in ENVIRONMENT.values())


def main(argv=None) -> int:
    from ..runtime import start_accounting

    start_accounting()
    if signal.getsignal(signal.SIGINT) is _interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        print("qfdjax: interrupted", file=sys.stderr)
        return 130
    except SystemExit as done:  # argparse's one-line refusal (2), --help or --version (0): a status, as below
        return done.code if isinstance(done.code, int) else 2
    try:
        _check_output(args)
        from ..runtime import check_interrupted, interrupts_remembered

        with interrupts_remembered() as signalled:
            # Inside: importing JAX runs its garbage-collection callback, where a Ctrl-C would be lost.
            _import_engine(args)
            check_interrupted()
            status = _run(args)
        if status == 0 and "qfdjax.fitting.kernel_memory" in sys.modules:
            sys.modules["qfdjax.fitting.kernel_memory"].remember_kernels(args.command)
        if signalled and status == 0:  # lost in a garbage-collection callback: it ran on, but was asked to stop
            raise KeyboardInterrupt
        return status
    except InputError as err:
        print(f"qfdjax {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qfdjax {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; results files are already written.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


# Python's collector runs every 700 net allocations by default; importing JAX and tracing kernels makes
# millions of short-lived objects and few cycles, and the collections took about 0.1 s of a warm 16 x 10
# scan's 2.4 s (measured, 2 cores).  Only the command raises the threshold: a library user's process
# keeps its own settings.
COMMAND_GC_THRESHOLD = (50_000, 50, 100)


def run() -> None:
    """The `qfdjax` command: main(), then leave without Python's interpreter teardown."""
    import gc

    gc.set_threshold(*COMMAND_GC_THRESHOLD)
    leave(main())


def leave(status: int) -> None:
    """Exit with `status` once every output is on disk, skipping interpreter finalisation.

    Why: tearing down JAX and XLA at exit (compiled executables, thread pools)
    takes ~0.2 s, a fifth of a warm `qfdjax fit` (measured, 2 cores).  By now
    every command has written and closed its files and joined its plot
    workers; after a success, kernels still being prepared in the background are
    waited for (they are the next run's compile cache).  A process in a `jax.distributed` team
    exits normally: its peers expect it to leave the coordination service.
    """
    import os

    compiled = sys.modules.get("qfdjax.fitting.compiled")
    # Only a finished command waits for its background kernels: after Ctrl-C or an error the user is not
    # kept waiting for exports nobody will use (artifacts are written atomically: one cut short is absent).
    if compiled is not None and status in (0, None):
        compiled.wait_for_prefetches()
    distributed = sys.modules.get("jax._src.distributed")
    if distributed is not None and getattr(distributed.global_state, "client", None) is not None:
        raise SystemExit(status)
    import logging

    logging.shutdown()
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass
    sys.stderr.flush()
    os._exit(0 if status is None else int(status))
