"""Priors per parameter, from a TOML table; uniform in the box unless said otherwise.

    [priors]
    "mu.U" = {normal = [0.05, 0.01]}     # mean, sd (truncated to the box)
    "tau.U" = "log-uniform"              # p(x) ∝ 1/x in the box
    beta = "uniform"

The box itself is always the support: a prior never widens a bound.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np

from ..errors import InputError

KINDS = ("uniform", "normal", "log-uniform")


@dataclasses.dataclass(frozen=True)
class Prior:
    kind: str = "uniform"
    mean: float = 0.0
    sd: float = 1.0

    def describe(self) -> str:
        return f"normal({self.mean:g}, {self.sd:g}) in the box" if self.kind == "normal" else f"{self.kind} in the box"


def parse_prior(name: str, value) -> Prior:
    if isinstance(value, str):
        if value not in ("uniform", "log-uniform"):
            raise InputError(f"priors.{name} = {value!r} is unknown: must be \"uniform\", \"log-uniform\" or "
                             f"{{normal = [mean, sd]}}")
        return Prior(value)
    if isinstance(value, Mapping) and set(value) == {"normal"}:
        pair = value["normal"]
        ok = (isinstance(pair, list) and len(pair) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pair))
        if not ok or not pair[1] > 0:
            raise InputError(f"priors.{name}.normal = {pair!r} is invalid: must be [mean, sd] with sd > 0")
        return Prior("normal", float(pair[0]), float(pair[1]))
    raise InputError(f"priors.{name} = {value!r} is invalid: must be \"uniform\", \"log-uniform\" or "
                     f"{{normal = [mean, sd]}}")


def read_priors(table, names: Sequence[str], lower: Sequence[float]) -> dict[str, Prior]:
    """{name: Prior} for every name (uniform where the table is silent); unknown or fixed names are refused."""
    table = table or {}
    if not isinstance(table, Mapping):
        raise InputError(f"priors = {table!r} must be a table of \"name\" = prior")
    unknown = sorted(set(table) - set(names))
    if unknown:
        raise InputError(f"priors name {unknown[0]!r}, which is not sampled: sampled parameters are "
                         f"{', '.join(names)}")
    priors = {n: parse_prior(n, table[n]) if n in table else Prior() for n in names}
    for name, lo in zip(names, lower, strict=True):
        if priors[name].kind == "log-uniform" and not lo > 0:
            raise InputError(f"priors.{name} = \"log-uniform\" needs a positive lower bound: it is {lo}")
    return priors


def prior_arrays(priors: Mapping[str, Prior], names: Sequence[str]):
    """(kind code, mean, sd) arrays in `names` order, for the compiled log density."""
    kind = np.array([KINDS.index(priors[n].kind) for n in names], dtype=np.int32)
    mean = np.array([priors[n].mean for n in names], dtype=np.float64)
    sd = np.array([priors[n].sd for n in names], dtype=np.float64)
    return kind, mean, sd
