"""Batched energy evaluation for tables of cases (the `qfdjax energy` command).

Cases are processed in fixed-size chunks (the last one padded), so any number of
cases costs one compilation per numerics and bounded memory.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .model.constants import ETA_DEFAULT, R_MAX_DEFAULT, R_MIN_DEFAULT
from .model.energy import energy_table
from .errors import InputError, check_energy_inputs, check_range
from .model.numerics import Exact, check_numerics_name, reference_numerics
from .model.quadrature import SeedGridSpec

CASE_FIELDS = ("beta", "w", "lam", "R_c", "U", "A")
GRID_KNOBS = ("dr_coarse", "dr_fine_factor", "window_below", "window_above", "guesses",
              "min_fine_points", "theta_margin", "denominator_eps")
OPTIONAL_FIELDS = ("num_theta", "r_min", "r_max", "eta") + GRID_KNOBS
OUTPUT_FIELDS = ("E_total", "E_circ", "E_stab", "E_grad")


_energies_chunk = energy_table


def _normalise_cases(cases: Iterable[Mapping]) -> list[dict]:
    cases = list(cases)
    if not cases:
        raise InputError("cases = [] is empty: give at least one case")
    out = []
    for i, case in enumerate(cases):
        if not isinstance(case, Mapping):
            raise InputError(f"case {i} = {case!r} is not an object with keys {', '.join(CASE_FIELDS)}")
        unknown = set(case) - set(CASE_FIELDS) - set(OPTIONAL_FIELDS) - set(OUTPUT_FIELDS) - {"exact", "num_r"}
        if unknown:
            raise InputError(f"case {i} has unknown keys {sorted(unknown)}: allowed are "
                             f"{', '.join(CASE_FIELDS + OPTIONAL_FIELDS)}")
        c = dict(case)
        if "lam" in c and "eta" in c:
            raise InputError(f"case {i} gives both lam and eta: give one (lam = eta*beta*0.88^2/11)")
        for key in OPTIONAL_FIELDS:
            if key not in c:
                continue
            value = c[key]
            items = value if key == "guesses" and isinstance(value, list) else [value]
            if key == "guesses" and not isinstance(value, list):
                raise InputError(f"guesses = {value!r} (case {i}) is invalid: must be a list of numbers")
            if any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in items):
                raise InputError(f"{key} = {value!r} (case {i}) is invalid: must be a number")
        for key in CASE_FIELDS:
            if key == "lam" and "lam" not in c:
                continue  # from eta below
            if key not in c:
                raise InputError(f"case {i} is missing {key!r}: required keys are {', '.join(CASE_FIELDS)}")
            if not isinstance(c[key], (int, float)) or isinstance(c[key], bool):
                raise InputError(f"{key} = {c[key]!r} (case {i}) is out of range: must be a finite number")
        if "lam" not in c:
            from .fitting.fit import resolve_lambda

            # The same eta rule as every command (lambda derived, refused naming eta), per case.
            try:
                c["lam"] = float(resolve_lambda(c["beta"], eta=c.get("eta", ETA_DEFAULT)))
            except InputError as err:
                raise InputError(f"{err} (case {i})") from None
        out.append(c)
    return out


# The seed's grid has (r_max - r_min) / dr_coarse coarse points; past this many a
# single case's weight tables alone would take gigabytes.
MAX_REFERENCE_GRID_POINTS = 2_000_000


def _check_reference_grid_sizes(specs, r_min, r_max) -> None:
    for i, (spec, lo, hi) in enumerate(zip(specs, r_min, r_max, strict=True)):
        points = (hi - lo) / spec.dr_coarse
        if points > MAX_REFERENCE_GRID_POINTS:
            raise InputError(f"r_max = {hi:g} (case {i}) with dr_coarse = {spec.dr_coarse:g} needs a seed grid of "
                             f"{points:.3g} points (about {points * 8 * 12 / 2**30:.1f} GiB of tables): must give "
                             f"at most {MAX_REFERENCE_GRID_POINTS:,} points")


def _spec_for(case: Mapping) -> SeedGridSpec:
    knobs = {k: (tuple(case[k]) if k == "guesses" else case[k]) for k in GRID_KNOBS if k in case}
    try:
        return SeedGridSpec(**knobs)  # type: ignore[arg-type]  # knob types are checked by SeedGridSpec itself
    except ValueError as err:
        raise InputError(str(err)) from None


def evaluate_cases(cases: Iterable[Mapping], numerics: str = "exact", chunk_size: int = 65536) -> list[dict]:
    """Energies for a list of case dicts, in order: each result holds its inputs plus E_*.

    Parameters
    ----------
    cases : iterable of mapping
        Keys: beta, w, lam (or eta), R_c, U, A; optional num_theta, r_min, r_max and the
        reference grid knobs.  Everything is validated before any evaluation.
    numerics : {"exact", "reference"}
    chunk_size : int
        Cases per compiled call (bounds memory).

    Returns
    -------
    list of dict
        Each case's inputs with E_circ, E_stab, E_grad and E_total.
    """
    check_numerics_name(numerics)
    check_range("chunk_size", chunk_size, lower=1, upper=2**24, integer=True)
    if isinstance(cases, (str, bytes, Mapping)) or not isinstance(cases, Iterable):
        raise InputError(f"cases = {cases!r:.60} is invalid: must be a list of case objects")
    cases = _normalise_cases(cases)
    columns = {k: np.array([c[k] for c in cases], dtype=np.float64) for k in CASE_FIELDS}
    r_min = np.array([c.get("r_min", R_MIN_DEFAULT) for c in cases], dtype=np.float64)
    r_max = np.array([c.get("r_max", R_MAX_DEFAULT) for c in cases], dtype=np.float64)
    num_theta = np.array([c.get("num_theta", SeedGridSpec.num_theta) for c in cases], dtype=np.float64)
    check_energy_inputs(**columns, r_min=r_min, r_max=r_max, num_theta=num_theta)
    specs = [_spec_for(c) for c in cases] if numerics == "reference" else None
    if specs is not None:
        _check_reference_grid_sizes(specs, r_min, r_max)

    values = np.empty((4, len(cases)))
    if numerics == "exact":
        values[:] = _chunked(lambda sl: Exact(r_min=r_min[sl], r_max=r_max[sl]), columns, len(cases), chunk_size)
    else:
        groups: dict[SeedGridSpec, list[int]] = {}
        for i, spec in enumerate(specs or ()):
            groups.setdefault(spec, []).append(i)
        for spec, members in groups.items():
            idx = np.array(members)
            numerics_all = reference_numerics(
                columns["w"][idx], num_theta=num_theta[idx].astype(int), spec=spec,
                r_min=r_min[idx], r_max=r_max[idx],
            )
            sub = {k: v[idx] for k, v in columns.items()}

            def make(sl, numerics_all=numerics_all):
                return eqx.tree_at(lambda n: n.grid_index, numerics_all, numerics_all.grid_index[sl])

            values[:, idx] = _chunked(make, sub, len(idx), chunk_size)
    bad = np.flatnonzero(~np.all(np.isfinite(values), axis=0))
    if bad.size:
        i = int(bad[0])
        raise InputError(f"case {i} (beta = {cases[i]['beta']!r}, R_c = {cases[i]['R_c']!r}, U = {cases[i]['U']!r}) "
                         f"gives a non-finite energy in float64: inputs outside the range the model can be "
                         f"evaluated in")
    results = []
    for i, c in enumerate(cases):
        row = {k: c[k] for k in c if k not in OUTPUT_FIELDS and k != "exact" and k != "num_r"}
        row.update({k: float(values[j, i]) for j, k in enumerate(OUTPUT_FIELDS)})
        results.append(row)
    return results


def _chunked(make_numerics, columns, n, chunk_size):
    """Evaluate in chunks of one fixed size, padding the last one by repetition."""
    size = min(chunk_size, n)
    out = np.empty((4, n))
    for start in range(0, n, size):
        sl = slice(start, min(start + size, n))
        count = sl.stop - sl.start
        pad = np.concatenate([np.arange(sl.start, sl.stop), np.full(size - count, sl.stop - 1)])
        numerics = make_numerics(pad)
        args = [jnp.asarray(columns[k][pad]) for k in CASE_FIELDS]
        out[:, sl] = np.asarray(_energies_chunk(numerics, *args))[:, :count]
    return out
