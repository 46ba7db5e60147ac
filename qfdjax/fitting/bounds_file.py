"""Bounds, fixed values and shared groups from TOML (a bounds file or a scan config's tables).

    [bounds.mu]
    R_c = [0.05, 0.5]
    [fixed]
    "tau.A" = 0.8
    [shared]
    groups = [["e.A", "mu.A", "tau.A"]]

Parsing is kept apart from `ParameterSpace` so the space stays a plain value and
every way a file can be wrong is answered here, by name, before any work.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from ..errors import InputError, read_toml
from ..model.constants import LEPTONS, PARAMS_PER_LEPTON
from .params import ParameterSpace

TABLES = ("bounds", "fixed", "shared")


def _number(value, where: str) -> float:
    # bool is an int in Python; true/false in a bounds file is always a slip.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where} = {value!r} is invalid: must be a number")
    if not math.isfinite(value):
        raise InputError(f"{where} = {value!r} is invalid: must be finite")
    return float(value)


def parse_bounds_tables(data: Mapping, space: ParameterSpace) -> ParameterSpace:
    """`space` with the [bounds], [fixed] and [shared] tables of `data` applied."""
    bounds_table = data.get("bounds", {})
    if not isinstance(bounds_table, Mapping):
        raise InputError(f"bounds = {bounds_table!r} must be tables like [bounds.mu]")
    bounds: dict[str, Any] = {}
    unused: dict[str, Any] = {}
    for lep, entries in bounds_table.items():
        if lep not in LEPTONS:
            raise InputError(f"[bounds.{lep}] names an unknown lepton: must be one of {', '.join(LEPTONS)}")
        if not isinstance(entries, Mapping):
            raise InputError(f"[bounds.{lep}] must be a table of name = [lower, upper]")
        for name, pair in entries.items():
            if name not in PARAMS_PER_LEPTON:
                raise InputError(f"bounds.{lep}.{name} is unknown: parameters are {', '.join(PARAMS_PER_LEPTON)}")
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise InputError(f"bounds.{lep}.{name} = {pair!r} is invalid: must be [lower, upper]")
            values = [_number(v, f"bounds.{lep}.{name}") for v in pair]
            (bounds if lep in space.leptons else unused)[f"{lep}.{name}"] = values
    # A lepton that is not fitted keeps none of these, but its bounds must still make sense: a typo in
    # them is a typo in the file, and the same file may be used with every lepton next time.
    ParameterSpace.seed(LEPTONS).with_overrides(unused)
    fixed_table = data.get("fixed", {})
    if not isinstance(fixed_table, Mapping):
        raise InputError(f"fixed = {fixed_table!r} must be a table of \"lepton.name\" = value")
    fixed = {name: _number(v, f"fixed.{name}") for name, v in fixed_table.items()}
    shared_table = data.get("shared", {})
    if not isinstance(shared_table, Mapping) or set(shared_table) - {"groups"}:
        raise InputError(f"shared = {shared_table!r} must be a table with groups = [[names...], ...]")
    groups = shared_table.get("groups", [])
    if not isinstance(groups, list) or not all(
            isinstance(g, list) and all(isinstance(n, str) for n in g) for g in groups):
        raise InputError(f"shared.groups = {groups!r} must be a list of lists of names like \"e.A\"")
    for name, value in fixed.items():
        if name in space.names:
            i = space.names.index(name)
            lo, hi = bounds.get(name, (space.lower[i], space.upper[i]))
            if not lo <= value <= hi:
                raise InputError(f"fixed.{name} = {value!r} is out of range: must be in its bounds [{lo}, {hi}]")
    return space.with_overrides(bounds, fixed, groups)


def read_bounds_file(path, leptons: Sequence[str] = LEPTONS, also: Sequence[str] = ()) -> ParameterSpace:
    """The seed bounds for `leptons`, overridden by a TOML bounds file (which may hold the tables `also`
    names besides, read by their own command: `qfdjax sample` reads [priors])."""
    data = read_toml(path, "bounds")
    unknown = sorted(set(data) - set(TABLES) - set(also))
    if unknown:
        hint = " ([priors] is read by qfdjax sample only)" if "priors" in unknown else ""
        raise InputError(f"bounds = {str(path)!r} has unknown tables {unknown}: allowed are "
                         f"{list(TABLES) + list(also)}{hint}")
    return parse_bounds_tables(data, ParameterSpace.seed(leptons))


def read_bounds(path, leptons: Sequence[str] = LEPTONS) -> ParameterSpace:
    """The parameter space of a bounds TOML file, ready for `qfdjax.fit(..., space=...)`.

    Parameters
    ----------
    path : str or Path
        A TOML file with `[bounds.LEPTON]` tables (name = [lower, upper]), `[fixed]`
        (name = value) and `[shared]` (parameters tied to one value).
    leptons : sequence of str
        The leptons fitted (default e, mu, tau).

    Returns
    -------
    ParameterSpace
        The seed's bounds for `leptons` with the file's overrides.
    """
    return read_bounds_file(path, leptons)
