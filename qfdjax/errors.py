"""User-input errors, raised before any work starts."""

from __future__ import annotations

import math

import numpy as np


class InputError(ValueError):
    """Bad user input.  The message names the field, the value and what is allowed."""


def _describe(value, index):
    where = "" if index is None else f" (case {index})"
    return f"{float(value)!r}{where}"


def check_range(name: str, values, *, lower=None, upper=None, lower_open=False, upper_open=False,
                integer=False, allowed_text: str | None = None):
    """Raise InputError for the first value of `values` outside the range."""
    import numbers

    if isinstance(values, numbers.Integral) and not isinstance(values, bool) and abs(int(values)) > 2**53:
        # Compared exactly (Python compares ints with floats exactly) and shown as given: float64 would
        # round 2**63 - 1 up past its own limit and print 99999999999999999999999 as 1e+23.
        shown_int: int | None = int(values)
        if ((lower is None or (shown_int > lower if lower_open else shown_int >= lower))
                and (upper is None or (shown_int < upper if upper_open else shown_int <= upper))):
            return
        arr = np.asarray(math.inf)  # outside: refused below, with the value shown as given
    else:
        arr, shown_int = np.asarray(values, dtype=np.float64), None
    flat = arr.ravel()
    scalar = arr.ndim == 0
    for i, v in enumerate(flat):
        index = None if scalar else i
        ok = math.isfinite(v)
        if ok and lower is not None:
            ok = v > lower if lower_open else v >= lower
        if ok and upper is not None:
            ok = v < upper if upper_open else v <= upper
        if ok and integer:
            ok = float(v).is_integer()
        if not ok:
            if allowed_text is None:
                parts = []
                if lower is not None:
                    parts.append(("> " if lower_open else ">= ") + f"{lower:g}")
                if upper is not None:
                    parts.append(("< " if upper_open else "<= ") + f"{upper:g}")
                text = " and ".join(parts) if parts else "a finite number"
                if integer:
                    text = f"an integer {text}".strip()
            else:
                text = allowed_text
            shown = str(shown_int) if shown_int is not None else _describe(v, index)
            raise InputError(f"{name} = {shown} is out of range: must be {text}")


# The model's domain in magnitude: energies grow like U^2 r_max^3 and beta (R_c + w)^3, so with
# every input at most 1e30 no energy, S* or chi^2 can overflow float64 (1.8e308).
MAX_MAGNITUDE = 1e30
# The smallest magnitude of a quantity that must be positive (beta, w, R_c, a sigma, a bound): its
# reciprocal square stays below 1e60, so nothing derived from it overflows, and a subnormal (1e-320,
# whose reciprocal is inf) is refused by name instead of ending in a chi^2 of inf.
MIN_POSITIVE = 1e-30
# The seed used 20 polar angles; tables grow with N_theta times the radial grid.
MAX_NUM_THETA = 10_000


def check_number(name: str, value) -> float:
    """`value` as a float if it is one real number (not a bool, string or array), else an InputError."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} = {value!r} is invalid: must be one real number")
    return float(value)


def check_integer(name: str, value) -> int:
    """`value` if it is an integer (a Python or NumPy int, never a bool), else an InputError."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} = {value!r} is invalid: must be an integer")
    return int(value)


def check_type(name: str, value, kind, allowed: str):
    """`value` if it is an instance of `kind`, else an InputError saying what is allowed."""
    if not isinstance(value, kind):
        raise InputError(f"{name} = {value!r} is invalid: must be {allowed}")
    return value


def check_positive(name: str, values) -> None:
    """The one domain rule for a quantity that must be positive: finite, MIN_POSITIVE <= value <= MAX_MAGNITUDE."""
    check_range(name, values, lower=MIN_POSITIVE, upper=MAX_MAGNITUDE)


def check_globals(beta, w, lam) -> None:
    """The model's domain for the globals: beta > 0 (a stiffness), w > 0 (both >= MIN_POSITIVE), lambda >= 0,
    all finite and at most MAX_MAGNITUDE.

    Every entry point (energy, fit, relax, scan, the Python API) checks these
    the same way, before any work: beta <= 0 makes E_stab change sign and S*
    undefined, w <= 0 has no boundary layer.
    """
    check_positive("beta", beta)
    check_positive("w", w)
    check_range("lam", lam, lower=0.0, upper=MAX_MAGNITUDE)


def check_energy_inputs(beta, w, lam, R_c, U, A, r_min=None, r_max=None, num_theta=None):
    """Validate per-lepton energy inputs (arrays broadcast together)."""
    check_globals(beta, w, lam)
    check_positive("R_c", R_c)
    check_range("U", U, lower=0.0, upper=MAX_MAGNITUDE)
    check_range("A", A, lower=0.0, upper=1.0)
    if r_min is not None:
        check_range("r_min", r_min, lower=0.0)
        # The core panel is [r_min, R_c]: an r_min at or past R_c drops the core from every integral.
        r_min_b, core = np.broadcast_arrays(np.asarray(r_min, float), np.asarray(R_c, float))
        for i, (v, bound) in enumerate(zip(np.ravel(r_min_b), np.ravel(core), strict=True)):
            if not v < bound:
                index = None if np.ndim(r_min_b) == 0 else i
                raise InputError(f"r_min = {_describe(v, index)} is out of range: must be < R_c = {bound:g}")
    if r_max is not None:
        R = np.broadcast_arrays(np.asarray(R_c, float) + np.asarray(w, float), np.asarray(r_max, float))
        outer, r_max_b = R
        for i, (v, bound) in enumerate(zip(np.ravel(r_max_b), np.ravel(outer), strict=True)):
            if not (math.isfinite(v) and bound < v <= MAX_MAGNITUDE):
                index = None if np.ndim(r_max_b) == 0 else i
                raise InputError(
                    f"r_max = {_describe(v, index)} is out of range: must be > R_c + w = {bound:g} "
                    f"and <= {MAX_MAGNITUDE:g}"
                )
    if num_theta is not None:
        check_range("num_theta", num_theta, lower=2, upper=MAX_NUM_THETA, integer=True)


# Input files (cases, bounds, configs, scan.json) are read whole; past this they are not what we expect.
MAX_INPUT_BYTES = 512 * 2**20


def read_bytes_file(path, what: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """A user's input file as bytes: a regular file (never a FIFO or device, which could block or never end)
    of at most `limit` bytes, or an InputError naming the flag and what is wrong."""
    from .runtime import spending

    with spending("io"):
        return _read_bytes_file(path, what, limit)


def _read_bytes_file(path, what: str, limit: int) -> bytes:
    import os
    import stat

    shown = str(path)
    try:
        info = os.stat(shown)
    except FileNotFoundError:
        raise InputError(f"{what} = {shown!r}: no such file") from None
    except OSError as err:
        raise InputError(f"{what} = {shown!r} cannot be read: {err.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{what} = {shown!r} is a directory: give a file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{what} = {shown!r} is not a regular file (a FIFO, socket or device): give a file")
    if info.st_size > limit:
        raise InputError(f"{what} = {shown!r} is {info.st_size / 2**20:.0f} MiB: must be at most "
                         f"{limit / 2**20:.0f} MiB")
    try:
        # O_NONBLOCK: a file swapped for a FIFO after the check still cannot block the open.
        fd = os.open(shown, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise InputError(f"{what} = {shown!r} is not a regular file: give a file")
            raw = handle.read(limit + 1)
    except OSError as err:
        raise InputError(f"{what} = {shown!r} cannot be read: {err.strerror}") from None
    if len(raw) > limit:
        raise InputError(f"{what} = {shown!r} is larger than {limit / 2**20:.0f} MiB")
    return raw


def read_text_file(path, what: str) -> str:
    """A user's input file as text, or an InputError naming the flag and what is wrong."""
    shown = str(path)
    raw = read_bytes_file(path, what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} = {shown!r} is not a text file (not UTF-8)") from None


def _parse(path, what: str, loads, decode_error, kind: str):
    try:
        return loads(read_text_file(path, what))
    except decode_error as err:
        raise InputError(f"{what} = {str(path)!r} is not valid {kind}: {err}") from None
    except RecursionError:
        raise InputError(f"{what} = {str(path)!r} is nested too deeply to be a qfdjax input") from None


def read_toml(path, what: str) -> dict:
    import tomllib

    return _parse(path, what, tomllib.loads, tomllib.TOMLDecodeError, "TOML")


def read_json(path, what: str):
    import json

    return _parse(path, what, json.loads, json.JSONDecodeError, "JSON")
