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
    arr = np.asarray(values, dtype=np.float64)
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
            raise InputError(f"{name} = {_describe(v, index)} is out of range: must be {text}")


def check_energy_inputs(beta, w, lam, R_c, U, A, r_min=None, r_max=None, num_theta=None):
    """Validate per-lepton energy inputs (arrays broadcast together)."""
    check_range("beta", beta)
    check_range("lam", lam, lower=0.0)
    check_range("w", w, lower=0.0, lower_open=True)
    check_range("R_c", R_c, lower=0.0, lower_open=True)
    check_range("U", U, lower=0.0)
    check_range("A", A, lower=0.0, upper=1.0)
    if r_min is not None:
        check_range("r_min", r_min, lower=0.0)
        # The core panel is [r_min, R_c]: an r_min at or past R_c drops the core from every integral.
        r_min_b, core = np.broadcast_arrays(np.asarray(r_min, float), np.asarray(R_c, float))
        for i, (v, bound) in enumerate(zip(np.ravel(r_min_b), np.ravel(core))):
            if not v < bound:
                index = None if np.ndim(r_min_b) == 0 else i
                raise InputError(f"r_min = {_describe(v, index)} is out of range: must be < R_c = {bound:g}")
    if r_max is not None:
        R = np.broadcast_arrays(np.asarray(R_c, float) + np.asarray(w, float), np.asarray(r_max, float))
        outer, r_max_b = R
        for i, (v, bound) in enumerate(zip(np.ravel(r_max_b), np.ravel(outer))):
            if not (math.isfinite(v) and v > bound):
                index = None if np.ndim(r_max_b) == 0 else i
                raise InputError(
                    f"r_max = {_describe(v, index)} is out of range: must be > R_c + w = {bound:g}"
                )
    if num_theta is not None:
        check_range("num_theta", num_theta, lower=2, integer=True)


def read_text_file(path, what: str) -> str:
    """A user's input file as text, or an InputError naming the flag and what is wrong."""
    import os

    shown = str(path)
    if not os.path.exists(shown):
        raise InputError(f"{what} = {shown!r}: no such file")
    if os.path.isdir(shown):
        raise InputError(f"{what} = {shown!r} is a directory: give a file")
    try:
        with open(shown, "rb") as handle:
            raw = handle.read()
    except OSError as err:
        raise InputError(f"{what} = {shown!r} cannot be read: {err.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} = {shown!r} is not a text file (not UTF-8)") from None


def read_toml(path, what: str) -> dict:
    import tomllib

    try:
        return tomllib.loads(read_text_file(path, what))
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{what} = {str(path)!r} is not valid TOML: {err}") from None


def read_json(path, what: str):
    import json

    try:
        return json.loads(read_text_file(path, what))
    except json.JSONDecodeError as err:
        raise InputError(f"{what} = {str(path)!r} is not valid JSON: {err}") from None
