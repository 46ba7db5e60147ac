"""What determines a scan's numbers: the grid, the model choices and the fit settings.

A `ScanConfig` is a frozen value; its fingerprint (hash of `to_dict()`) guards
resumes and merges against mixing results of different configurations.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from ..errors import MAX_MAGNITUDE, InputError, check_positive, check_range
from ..model.profiles import MAX_POWER_S
from ..fitting.fit import FitConfig
from ..fitting.params import ParameterSpace
from ..model.constants import ETA_DEFAULT, SEED_BETA_RANGE, SEED_W_RANGE, lambda_from_eta
from ..model.numerics import check_numerics_name
from ..model.quadrature import SeedGridSpec


@dataclasses.dataclass(frozen=True)
class ScanConfig:
    """Everything that determines a scan's numbers (hashed to guard resumes)."""

    beta: tuple[float, float, int] = SEED_BETA_RANGE
    w: tuple[float, float, int] = SEED_W_RANGE
    w_spacing: str = "log"
    eta: float = ETA_DEFAULT
    numerics: str = "exact"
    fit: FitConfig = FitConfig(starts=8)
    bounds: dict = dataclasses.field(default_factory=lambda: ParameterSpace.seed().as_dict())
    leptons: tuple[str, ...] = ("e", "mu", "tau")
    r_max: float = SeedGridSpec.r_max
    neighbour_passes: int = 3
    observables: tuple[str, ...] = ("mass",)
    shared: tuple[tuple[str, ...], ...] = ()
    profile: str = "boundary"
    power_s: float = 2.0

    def __post_init__(self):
        # Types first, so a wrong one is a one-line refusal and not an error deep in the checks below.
        for name in ("beta", "w"):
            object.__setattr__(self, name, _grid_axis(name, getattr(self, name)))
        for name in ("w_spacing", "numerics", "profile"):
            _check_type(name, getattr(self, name), str)
        for name in ("eta", "r_max", "power_s"):
            object.__setattr__(self, name, float(_check_type(name, getattr(self, name), float)))
        _check_type("neighbour_passes", self.neighbour_passes, int)
        if not isinstance(self.fit, FitConfig):
            raise InputError(f"fit = {self.fit!r} is invalid: must be a FitConfig")
        if not isinstance(self.bounds, dict):
            raise InputError(f"bounds = {self.bounds!r} is invalid: must be a mapping of name -> [lower, upper]")
        for name in ("leptons", "observables"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(
                    isinstance(v, str) for v in value):
                raise InputError(f"{name} = {value!r} is invalid: must be a list of names")
            object.__setattr__(self, name, tuple(value))
        if not isinstance(self.shared, (list, tuple)) or not all(
                isinstance(g, (list, tuple)) and all(isinstance(v, str) for v in g) for g in self.shared):
            raise InputError(f"shared = {self.shared!r} is invalid: must be a list of groups of names")
        object.__setattr__(self, "shared", tuple(tuple(g) for g in self.shared))
        # The default bounds cover every lepton; a subset keeps its own (another lepton's bound that differs
        # from the seed's is still refused by space() as unknown: it would be silently unused).
        seed = ParameterSpace.seed().as_dict()
        unused = [k for k in self.bounds if k.split(".")[0] not in self.leptons and list(self.bounds[k]) == seed.get(k)]
        if unused:
            object.__setattr__(self, "bounds", {k: v for k, v in self.bounds.items() if k not in unused})
        check_range("power_s", self.power_s, lower=0.0, lower_open=True, upper=MAX_POWER_S)
        for name, (start, stop, n) in (("beta", self.beta), ("w", self.w)):
            check_range(f"{name} N", n, lower=1, integer=True)
            # The same domain as every beta and w (errors.check_positive): a grid's ends are points of it.
            check_positive(f"{name} START", start)
            check_positive(f"{name} STOP", stop)
            if start > stop or (n > 1 and start == stop) or (n == 1 and start != stop):
                raise InputError(f"{name} range START = {start} STOP = {stop} N = {n} is invalid: "
                                 f"need START < STOP with N > 1, or START == STOP with N = 1")
        if self.w_spacing not in ("log", "linear"):
            raise InputError(f"w spacing = {self.w_spacing!r} is unknown: must be log or linear")
        check_numerics_name(self.numerics)
        check_range("eta", self.eta, lower=0.0, upper=MAX_MAGNITUDE)
        lam_top = lambda_from_eta(max(self.beta[0], self.beta[1]), self.eta)
        if not lam_top <= MAX_MAGNITUDE:  # lambda is derived: refused naming the input that set it
            raise InputError(f"eta = {float(self.eta)!r} gives lam = {lam_top:g} at beta = "
                             f"{max(self.beta[0], self.beta[1]):g}: out of range: lam must be <= {MAX_MAGNITUDE:g}")
        check_range("neighbour passes", self.neighbour_passes, lower=0, integer=True)
        self.likelihood()
        self.make_profile()
        self.space().check_domain(self.r_max, self.w[1])

    def likelihood(self):
        from ..fitting.observables import build_likelihood

        return build_likelihood(self.leptons, self.observables)

    def make_profile(self):
        from ..model.profiles import make_profile

        return make_profile(self.profile, self.power_s)

    def space(self) -> ParameterSpace:
        base = ParameterSpace.seed(self.leptons)
        return base.with_overrides({k: v for k, v in self.bounds.items()}, shared=self.shared)

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        beta = np.linspace(self.beta[0], self.beta[1], int(self.beta[2]))
        if self.w_spacing == "log":
            w = np.geomspace(self.w[0], self.w[1], int(self.w[2]))
        else:
            w = np.linspace(self.w[0], self.w[1], int(self.w[2]))
        return beta, w

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["beta"], d["w"] = list(self.beta), list(self.w)
        d["leptons"] = list(self.leptons)
        d["observables"] = list(self.observables)
        d["shared"] = [list(g) for g in self.shared]
        return d

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict) -> "ScanConfig":
        """A config from its `to_dict()` form (scan.json, scan_config.json), types checked."""
        if not isinstance(d, dict):
            raise InputError(f"scan config = {d!r} is invalid: must be a table of settings")
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"scan config has unknown keys {sorted(unknown)}: allowed are {sorted(known)}")
        fit = d.get("fit", {})
        if not isinstance(fit, dict):
            raise InputError(f"fit = {fit!r} must be a table of fit settings")
        fit_known = {f.name for f in dataclasses.fields(FitConfig)}
        if set(fit) - fit_known:
            raise InputError(f"[fit] has unknown keys {sorted(set(fit) - fit_known)}: allowed are {sorted(fit_known)}")
        for key, value in fit.items():
            _check_type(f"fit.{key}", value, str if key == "method" else (float if key == "de_tol" else int))
        d["fit"] = FitConfig(**fit)
        for key in ("beta", "w"):
            if key in d:
                d[key] = _grid_axis(key, d[key])
        for key in ("w_spacing", "numerics", "profile"):
            if key in d:
                _check_type(key, d[key], str)
        for key in ("eta", "r_max", "power_s"):
            if key in d:
                d[key] = float(_check_type(key, d[key], float))
        if "neighbour_passes" in d:
            _check_type("neighbour_passes", d["neighbour_passes"], int)
        for key in ("leptons", "observables"):
            if key in d:
                if not isinstance(d[key], (list, tuple)) or not all(isinstance(v, str) for v in d[key]):
                    raise InputError(f"{key} = {d[key]!r} is invalid: must be a list of names")
                d[key] = tuple(d[key])
        return cls(**d)  # __post_init__ checks and normalises the rest (shared groups, bounds)


def _check_type(name: str, value, kind):
    """value if it has the TOML type `kind` (int accepted for float), else an InputError."""
    ok = (not isinstance(value, bool)) and (
        isinstance(value, (int, float)) if kind is float else isinstance(value, kind))
    if not ok:
        wanted = {float: "a number", int: "an integer", str: "a string"}[kind]
        raise InputError(f"{name} = {value!r} is invalid: must be {wanted}")
    return value


def _grid_axis(name: str, value) -> tuple[float, float, int]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or len(value) != 3:
        raise InputError(f"{name} = {value!r} is invalid: must be [START, STOP, N]")
    start, stop, n = value
    _check_type(f"{name} START", start, float)
    _check_type(f"{name} STOP", stop, float)
    _check_type(f"{name} N", n, int)
    return float(start), float(stop), int(n)


# Keys a scan config TOML file may hold beside ScanConfig's own.
TOML_EXTRA_KEYS = ("description",)


def scan_config_from_mapping(data: dict, bounds_file=None) -> ScanConfig:
    """A ScanConfig from a scan TOML's contents: top-level settings, [fit], and the
    [bounds.*]/[fixed]/[shared] tables (or a separate bounds file, which then wins)."""
    from ..fitting.bounds_file import parse_bounds_tables, read_bounds_file

    data = dict(data)
    for key in TOML_EXTRA_KEYS:
        data.pop(key, None)
    tables = {k: data.pop(k) for k in ("bounds", "fixed", "shared") if k in data}
    leptons = data.get("leptons", ("e", "mu", "tau"))
    if not isinstance(leptons, (list, tuple)) or not all(isinstance(v, str) for v in leptons):
        raise InputError(f"leptons = {leptons!r} is invalid: must be a list of names")
    leptons = tuple(leptons)
    space = (read_bounds_file(bounds_file, leptons) if bounds_file else
             parse_bounds_tables(tables, ParameterSpace.seed(leptons)))
    data["bounds"] = space.as_dict()
    data["shared"] = space.shared_groups()
    data["fit"] = {"starts": 8, **data.get("fit", {})} if isinstance(data.get("fit", {}), dict) else data["fit"]
    return ScanConfig.from_dict(data)
