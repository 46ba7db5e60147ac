"""Named fit parameters, their bounds and fixed values.

The optimisers work in unit-box coordinates u in [0, 1]^n, x = lower + u*(upper -
lower): every parameter then has the same scale, which is what both the
Levenberg-Marquardt damping and differential evolution's mutation assume.  A
fixed parameter has lower == upper.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np

from ..model.constants import LEPTONS, PARAMS_PER_LEPTON, SEED_BOUNDS
from ..errors import MAX_MAGNITUDE, MIN_POSITIVE, InputError


@dataclasses.dataclass(frozen=True)
class ParameterSpace:
    """Ordered parameters 'lepton.name' with bounds; order is lepton-major."""

    leptons: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    # Shared parameters as (follower, leader) index pairs: a follower always
    # takes its leader's value and is never moved by the optimisers itself.
    tied: tuple[tuple[int, int], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"{lep}.{p}" for lep in self.leptons for p in PARAMS_PER_LEPTON)

    @property
    def size(self) -> int:
        return len(self.lower)

    @property
    def fixed(self) -> np.ndarray:
        """Parameters the optimisers must not move: fixed values and shared followers."""
        out = np.array(self.lower) == np.array(self.upper)
        for follower, _ in self.tied:
            out[follower] = True
        return out

    def __post_init__(self):
        unknown = [lep for lep in self.leptons if lep not in LEPTONS]
        if unknown or not self.leptons or len(set(self.leptons)) != len(self.leptons):
            raise InputError(f"leptons = {list(self.leptons)} is invalid: must be distinct names from "
                             f"{', '.join(LEPTONS)}")
        n = len(self.leptons) * len(PARAMS_PER_LEPTON)
        if len(self.lower) != n or len(self.upper) != n:
            raise InputError(f"bounds have {len(self.lower)}/{len(self.upper)} entries: need {n}")
        for name, lo, hi in zip(self.names, self.lower, self.upper, strict=True):
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise InputError(f"bounds of {name} = [{lo}, {hi}] are invalid: must be finite")
            if lo > hi:
                raise InputError(f"bounds of {name} = [{lo}, {hi}] are inverted: lower must be <= upper")
            # The same domain rule as every energy input (errors.check_positive for R_c).
            allowed = {"R_c": (MIN_POSITIVE, MAX_MAGNITUDE, f"{MIN_POSITIVE:g} <= R_c <= {MAX_MAGNITUDE:g}"),
                       "U": (0.0, MAX_MAGNITUDE, f"0 <= U <= {MAX_MAGNITUDE:g}"),
                       "A": (0.0, 1.0, "0 <= A <= 1")}[name.split(".")[1]]
            if lo < allowed[0] or hi > allowed[1]:
                raise InputError(f"bounds of {name} = [{lo}, {hi}] leave the model's domain: must keep "
                                 f"{allowed[2]}")
        for follower, leader in self.tied:
            names = self.names
            if (self.lower[follower], self.upper[follower]) != (self.lower[leader], self.upper[leader]):
                raise InputError(
                    f"shared parameters {names[leader]} and {names[follower]} have different bounds "
                    f"[{self.lower[leader]}, {self.upper[leader]}] and [{self.lower[follower]}, "
                    f"{self.upper[follower]}]: shared parameters need identical bounds")

    @classmethod
    def seed(cls, leptons: Sequence[str] = LEPTONS) -> "ParameterSpace":
        leptons = tuple(leptons)
        for lep in leptons:
            if lep not in SEED_BOUNDS:
                raise InputError(f"lepton = {lep!r} is unknown: must be one of {', '.join(LEPTONS)}")
        lower = tuple(SEED_BOUNDS[lep][p][0] for lep in leptons for p in PARAMS_PER_LEPTON)
        upper = tuple(SEED_BOUNDS[lep][p][1] for lep in leptons for p in PARAMS_PER_LEPTON)
        return cls(leptons, lower, upper)

    def with_overrides(self, bounds: Mapping[str, Sequence[float]] | None = None,
                       fixed: Mapping[str, float] | None = None,
                       shared: Sequence[Sequence[str]] | None = None) -> "ParameterSpace":
        """New space with bounds replaced ('mu.R_c': [lo, hi]), values fixed, or groups shared.

        `shared` lists groups of names that take one common value, e.g.
        [["e.A", "mu.A", "tau.A"]]; the first name of a group leads.
        """
        lower, upper = list(self.lower), list(self.upper)
        index = {n: i for i, n in enumerate(self.names)}
        for name, pair in (bounds or {}).items():
            if name not in index:
                raise InputError(f"bound for {name!r} is unknown: parameters are {', '.join(self.names)}")
            if len(pair) != 2:
                raise InputError(f"bounds of {name} = {list(pair)} must be [lower, upper]")
            lower[index[name]], upper[index[name]] = float(pair[0]), float(pair[1])
        for name, value in (fixed or {}).items():
            if name not in index:
                raise InputError(f"fixed value for {name!r} is unknown: parameters are {', '.join(self.names)}")
            lower[index[name]] = upper[index[name]] = float(value)
        tied = list(self.tied)
        for group in shared or []:
            group = list(group)
            unknown = [name for name in group if name not in index]
            if unknown or len(group) < 2 or len(set(group)) != len(group):
                raise InputError(f"shared group {group} is invalid: needs >= 2 distinct names from "
                                 f"{', '.join(self.names)}")
            tied += [(index[name], index[group[0]]) for name in group[1:]]
        followers = [f for f, _ in tied]
        if len(set(followers)) != len(followers) or set(followers) & {lead for _, lead in tied}:
            raise InputError("shared groups overlap: each parameter may belong to one group")
        return ParameterSpace(self.leptons, tuple(lower), tuple(upper), tuple(tied))

    # --- coordinates (host side, NumPy; kernels and host map back with `problem.Box`) ---
    def leader_index(self) -> np.ndarray:
        """leader[i] = i, except for shared followers, which point at their group's leader."""
        leader = np.arange(self.size)
        for follower, lead in self.tied:
            leader[follower] = lead
        return leader

    def to_unit(self, x) -> np.ndarray:
        lo, span = self.arrays()
        x = np.asarray(x, dtype=np.float64)
        return np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.0)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.asarray(self.lower, dtype=np.float64)
        return lo, np.asarray(self.upper, dtype=np.float64) - lo

    def check_domain(self, r_max: float, w_max: float) -> None:
        """The energy domain must contain every lepton the bounds allow: r_max > R_c + w."""
        largest = max(hi for name, hi in zip(self.names, self.upper, strict=True) if name.endswith("R_c")) + w_max
        if not r_max > largest:
            raise InputError(f"r_max = {r_max} is out of range: must be > largest R_c + w = {largest:g}")

    def check_inside(self, x, what: str = "start") -> None:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.size:
            raise InputError(f"{what} has {x.shape[-1]} parameters: need {self.size} ({', '.join(self.names)})")
        for row in x.reshape(-1, self.size):
            for name, v, lo, hi in zip(self.names, row, self.lower, self.upper, strict=True):
                if not (math.isfinite(v) and lo <= v <= hi):
                    raise InputError(f"{what} {name} = {float(v)!r} is out of range: must be in [{lo}, {hi}]")

    def as_dict(self) -> dict:
        return {n: [lo, hi] for n, lo, hi in zip(self.names, self.lower, self.upper, strict=True)}

    def shared_groups(self) -> list[list[str]]:
        groups: dict[int, list[str]] = {}
        for follower, leader in self.tied:
            groups.setdefault(leader, [self.names[leader]]).append(self.names[follower])
        return list(groups.values())


LEPTON_SYMBOLS = {"e": "e", "mu": "μ", "tau": "τ"}


def parameter_label(name: str) -> str:
    """mu.U -> $U_{μ}$: the symbol a paper prints, from qfdjax's parameter name."""
    lepton, _, param = name.partition(".")
    if not param or lepton not in LEPTON_SYMBOLS:
        return name
    base, _, sub = param.partition("_")
    index = LEPTON_SYMBOLS[lepton] if not sub else f"{sub},{LEPTON_SYMBOLS[lepton]}"
    return f"${base}_{{{index}}}$"
