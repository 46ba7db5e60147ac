"""Pseudo-experiments at one (beta, w): a goodness-of-fit p-value and the coverage of Delta chi^2 intervals.

Why: every interval qfdjax prints leans on Wilks' theorem (Delta chi^2 = 1 is
68.27 %), and "chi^2 is not O(1)" on chi^2 following its asymptotic
distribution.  Neither holds here by assumption: parameters sit on bounds at the
optimum, the electron's are degenerate, and the data's sigma is a modelling
tolerance (sigma_model x m), not a measurement error.  Toys measure both.

The convention, stated in every output: toy k's data are drawn from
N(prediction at the truth, sigma) entry by entry -- masses with sigma = sigma_model
x the measured mass, g-factors with sigma_g -- where the truth is the best fit to
the real data at (beta, w) unless given.  The normal deviates are counter-based
(a hash of (seed, toy id)), so toy k is the same on any machine, chunking or
device.  Each toy is refitted like any fit (multi-start, certified), as lanes of
the same compiled kernels: the data are per-lane array inputs.

Coverage uses the profile-likelihood duality: the Delta chi^2 <= L interval of a
parameter covers its true value exactly when chi^2 with that parameter fixed at
the truth (the others refitted) exceeds the toy's chi^2_min by at most L.  One
constrained refit per toy and parameter, instead of two MINOS searches.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from ..errors import InputError, check_integer, check_range
from ..fitting.fit import FitConfig, check_point, fit_points, resolve_lambda
from ..fitting.optimize.starts import uniform_for_points
from ..fitting.resources import check_fit_memory
from .toy_summary import summarize_toys

# Streams of the counter-based generator (the starts use 0-2): two uniforms per normal deviate.
NORMAL_STREAMS = (10, 11)
SIGMA_CONVENTION = ("toy data ~ N(prediction at the truth, sigma), independently per datum: masses with sigma = "
                    "sigma_model x measured mass, g-factors with sigma_g; the truth is the best fit to the data at "
                    "(beta, w) unless given")
MAX_TOYS = 10_000_000


def standard_normals(seed: int, toy_ids, k: int) -> np.ndarray:
    """(toys, k) standard normal deviates, each a function of (seed, toy id, entry) only (Box-Muller)."""
    u1 = uniform_for_points(seed, toy_ids, NORMAL_STREAMS[0], (k,))
    u2 = uniform_for_points(seed, toy_ids, NORMAL_STREAMS[1], (k,))
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def toy_data(prediction, sigma, seed: int, toy_ids) -> np.ndarray:
    """Pseudo-data (toys, k): prediction + sigma x N(0, 1), counter-based per toy."""
    prediction, sigma = np.asarray(prediction, float), np.asarray(sigma, float)
    return prediction + sigma * standard_normals(seed, toy_ids, prediction.size)


def chi2_pdf(x, ndf: int):
    """The chi^2 density with ndf degrees of freedom (NumPy only)."""
    x = np.asarray(x, float)
    k = ndf / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        log = (k - 1.0) * np.log(x) - x / 2.0 - k * math.log(2.0) - math.lgamma(k)
    return np.where(x > 0, np.exp(log), 0.0)


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    """How many toys, their seed, which parameters' coverage, and the chunk of toys fitted per call."""

    n: int = 1000
    seed: int = 0
    coverage: tuple[str, ...] = ()
    chunk: int = 256
    # (first, stop): fit only toys first..stop-1 of the n (a share of the work for one host; `merge` joins them).
    part: tuple[int, int] | None = None

    def __post_init__(self):
        for name in ("n", "seed", "chunk"):
            check_integer(name, getattr(self, name))
        check_range("n", self.n, lower=1, upper=MAX_TOYS, integer=True)
        if self.part is not None:
            if (not isinstance(self.part, (tuple, list)) or len(self.part) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in self.part)
                    or not 0 <= self.part[0] < self.part[1] <= self.n):
                raise InputError(f"toys part = {self.part!r} is invalid: must be FIRST:STOP with 0 <= FIRST < STOP <= "
                                 f"n = {self.n}")
            first, stop = self.part
            if first % self.chunk or (stop % self.chunk and stop != self.n):
                raise InputError(f"toys part = {first}:{stop} must start and end on multiples of chunk = {self.chunk} "
                                 f"(or end at n = {self.n}): toys are fitted in fixed groups, so that parts equal "
                                 f"one run bit for bit")
            object.__setattr__(self, "part", tuple(self.part))
        check_range("seed", self.seed, lower=0, upper=2**63 - 1, integer=True)
        check_range("chunk", self.chunk, lower=1, upper=65536, integer=True)
        if isinstance(self.coverage, str) or not all(isinstance(c, str) for c in self.coverage):
            raise InputError(f"coverage = {self.coverage!r} is invalid: must be a list of parameter names")
        object.__setattr__(self, "coverage", tuple(self.coverage))


def _check_truth(space, truth) -> None:
    """`truth` {name: value}: known names, finite numbers inside their bounds (checked before any fit)."""
    if truth is None:
        return
    if not isinstance(truth, dict):
        raise InputError(f"truth = {truth!r} is invalid: must map parameter names to values")
    for name, value in truth.items():
        if name not in space.names:
            raise InputError(f"truth names {name!r}: parameters are {', '.join(space.names)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"truth {name} = {value!r} is invalid: must be a finite number")
        lo, hi = space.as_dict()[name]
        if not lo <= value <= hi:
            raise InputError(f"truth {name} = {value!r} is out of range: must be in its bounds [{lo}, {hi}]")


def _truth_params(space, observed_params, truth) -> np.ndarray:
    """The truth as natural parameters: the observed best fit, overridden by `truth` {name: value}."""
    params = np.array(observed_params, float)
    for name, value in (truth or {}).items():
        params[space.names.index(name)] = float(value)
    return params


def run_toys(beta: float, w: float, lam: float | None = None, *, toys: ToyConfig = ToyConfig(),
             eta: float | None = None, numerics: str = "exact", config: FitConfig = FitConfig(starts=4),
             space=None, observables=("mass",), truth: dict | None = None, progress=None) -> dict:
    """Toys at (beta, w): GOF p-value of the observed chi^2_min and, for `toys.coverage`, the coverage
    of the Delta chi^2 = 1 and 4 intervals.  Returns the toys.json record with its arrays under "arrays".

    Every input is checked (and the memory a chunk takes estimated) before any fit.
    """
    from ..fitting.fit import fit
    from ..fitting.observables import build_likelihood
    from ..fitting.params import ParameterSpace

    if not isinstance(toys, ToyConfig):
        raise InputError(f"toys = {toys!r} is invalid: must be a ToyConfig")
    if not isinstance(config, FitConfig) or config.method != "gradient":
        raise InputError("toys refit with the gradient method: config must be a FitConfig with method 'gradient'")
    space = space or ParameterSpace.seed()
    likelihood = build_likelihood(space.leptons, observables)
    lam_value = resolve_lambda(beta, lam, eta)
    check_point(beta, w, lam_value)
    from .global_coverage import GLOBAL_NAMES, conventions, profile_minimum_lanes

    for name in toys.coverage:
        if name in GLOBAL_NAMES:
            continue
        if name not in space.names:
            raise InputError(f"coverage names {name!r}: parameters are {', '.join(space.names)} (or beta, w)")
        if space.fixed[space.names.index(name)]:
            raise InputError(f"coverage of {name} is undefined: it is fixed (or a shared follower) in these bounds")
    _check_truth(space, truth)
    k = likelihood.data().size
    lanes_per_toy = config.gradient_starts + 1
    first, stop = toys.part or (0, toys.n)
    count = stop - first
    chunk = min(toys.chunk, count)
    check_fit_memory("toys", chunk, lanes_per_toy, space.size, numerics=numerics)
    host = count * (k + 3 * space.size + 4 + len(toys.coverage)) * 8
    from ..fitting.resources import machine_memory_bytes

    if machine_memory_bytes() and host > 0.5 * machine_memory_bytes():
        raise InputError(f"n = {toys.n} toys would keep about {host / 2**30:.1f} GiB of results on this machine of "
                         f"{machine_memory_bytes() / 2**30:.1f} GiB: use fewer toys")

    t0 = time.perf_counter()
    observed = fit(beta, w, lam, eta=eta, numerics=numerics, config=config, space=space, observables=observables)
    truth_params = _truth_params(space, observed["params"], truth)
    # The prediction at the truth itself (not at a refit of it): the diagnostics at the start we gave.
    prediction = prediction_at(truth_params, beta, w, lam_value, numerics, space, likelihood)
    sigma = likelihood.data_sigma()
    names = likelihood.data_names(space.leptons)

    arrays = {"chi2": np.empty(count), "data": np.empty((count, k)), "params": np.empty((count, space.size)),
              "valid": np.zeros(count, bool), "uncertified_reason": np.zeros(count, np.int64),
              "at_lower": np.zeros((count, space.size), bool),
              "at_upper": np.zeros((count, space.size), bool)}
    for name in toys.coverage:
        arrays[f"dchi2_truth_{name}"] = np.empty(count)
        if name in GLOBAL_NAMES:
            arrays[f"valid_{name}"] = np.zeros(count, bool)
    fixed_spaces = {name: space.with_overrides(fixed={name: truth_params[space.names.index(name)]})
                    for name in toys.coverage if name not in GLOBAL_NAMES}
    # lambda follows beta at this point's lambda/beta (the eta calibration) when beta moves.
    from ..model.constants import lambda_from_eta

    eta_here = lam_value / lambda_from_eta(beta, 1.0)
    starts_done = 0
    for start in range(first, stop, chunk):
        ids = np.arange(start, min(start + chunk, stop))  # toy k's data and starts depend on (seed, k) only
        at = ids - first
        data = toy_data(prediction, sigma, toys.seed, ids)
        B, W, L = (np.full(ids.size, v, float) for v in (beta, w, lam_value))
        truth_rep = np.repeat(truth_params[None], ids.size, axis=0)
        out = fit_points(B, W, L, numerics=numerics, config=dataclasses.replace(config, seed=toys.seed),
                         space=space, likelihood=likelihood, data=data, point_ids=ids, extra_starts=truth_rep)
        arrays["data"][at] = data
        arrays["chi2"][at] = out["chi2"]
        arrays["params"][at] = out["params"]
        arrays["valid"][at] = out["converged"]
        arrays["uncertified_reason"][at] = out["uncertified_reason"]
        arrays["at_lower"][at] = out["at_lower"]
        arrays["at_upper"][at] = out["at_upper"]
        for name in (n for n in toys.coverage if n in GLOBAL_NAMES):
            # The toy's own minimum over beta (or w), the other global held at the truth; the toy's fit at the
            # truth is its constrained chi^2.
            found = profile_minimum_lanes(name, B, W, eta_here, data, out["params"], ids,
                                          dict(numerics=numerics, config=dataclasses.replace(config, seed=toys.seed),
                                               space=space, likelihood=likelihood), start=out)
            arrays[f"dchi2_truth_{name}"][at] = np.maximum(out["chi2"] - found["chi2"], 0.0)
            arrays[f"valid_{name}"][at] = found["converged"]
        for name, fixed_space in fixed_spaces.items():
            constrained = fit_points(B, W, L, numerics=numerics, config=dataclasses.replace(config, seed=toys.seed),
                                     space=fixed_space, likelihood=likelihood, data=data, point_ids=ids,
                                     extra_starts=truth_rep)
            arrays[f"dchi2_truth_{name}"][at] = constrained["chi2"] - out["chi2"]
            arrays["valid"][at] &= constrained["converged"]
        starts_done += ids.size
        if progress is not None:
            progress(starts_done, count)
    elapsed = time.perf_counter() - t0
    free = [n for n, f in zip(space.names, space.fixed, strict=True) if not f]
    record = summarize_toys(arrays, float(observed["chi2"]), observed["identifiability"]["degrees_of_freedom"],
                            space.names, free, toys.coverage)
    record |= {
        "beta": float(beta), "w": float(w), "lam": float(lam_value), "numerics": numerics,
        "observables": list(observables), "n": count, "n_total": toys.n, "toy_range": [first, stop],
        "seed": toys.seed, "chunk": chunk,
        "sigma_convention": SIGMA_CONVENTION, "data_names": names, "prediction": prediction.tolist(),
        "sigma": sigma.tolist(), "truth": dict(zip(space.names, truth_params.tolist(), strict=True)),
        "truth_given": truth is not None, "observed_fit_valid": bool(observed.valid),
        "config": {"fit": dataclasses.asdict(config), "toys": dataclasses.asdict(toys), "bounds": space.as_dict(),
                   "shared": space.shared_groups()},
        "timings": {"toys_s": elapsed, "per_toy_ms": 1e3 * elapsed / count},
    }
    if any(n in GLOBAL_NAMES for n in toys.coverage):
        record["coverage_globals"] = conventions(toys.coverage)
    record["arrays"] = arrays
    return record


def prediction_at(params, beta, w, lam, numerics, space, likelihood, profile=None) -> np.ndarray:
    """The model's prediction (the likelihood's data layout) at natural parameters: one point, or many
    (params (P, n) with beta, w, lam (P,)) in one batched diagnostics call."""
    from ..fitting.diagnostics import point_diagnostics
    from ..fitting.problem import Problem, make_numerics
    from ..model.profiles import BoundaryLayer

    params = np.asarray(params, float)
    single = params.ndim == 1
    P = np.atleast_2d(params)
    beta, w, lam = (np.broadcast_to(np.asarray(v, float), (P.shape[0],)).copy() for v in (beta, w, lam))
    problem = Problem.build(space, likelihood, profile or BoundaryLayer())
    diag = point_diagnostics(problem, make_numerics(numerics, w), beta, w, lam, space.to_unit(P))
    prediction = np.asarray(diag["prediction"], float)
    if not np.all(np.isfinite(prediction)):
        raise InputError("the model's prediction at the truth is not finite")
    return prediction[0] if single else prediction


def toys(beta: float, w: float, lam: float | None = None, *, n: int = 1000, seed: int = 0, coverage=(),
         chunk: int = 256, truth: dict | None = None, out=None, **fit_kwargs):
    """Pseudo-experiments at (beta, w): the GOF p-value of chi^2_min and the coverage of Delta chi^2 intervals.

    Parameters
    ----------
    beta, w, lam : the point (lam from eta = 0.03 unless given, as in `qfdjax.fit`).
    n, seed : how many toys, and the seed of their counter-based generator (toy k is the same anywhere).
    coverage : parameter names whose Delta chi^2 = 1 and 4 intervals' coverage is measured.
    chunk : toys fitted per compiled call (bounds memory).
    truth : {name: value} overriding the best fit as the truth the toys are drawn from.
    out : a directory for toys.json, toys.npz, toys.csv and toys.png (nothing is written without it).
    **fit_kwargs : eta, numerics, config (a FitConfig, gradient method), space, observables.

    Returns
    -------
    ToysResult
        The toys.json record as a mapping (p_value, p_value_error, coverage, fraction_on_bound, ...) with the
        per-toy arrays (chi2, data, params, valid, dchi2_truth_<name>) as `.arrays` (and under "arrays").
    """
    if out is not None:
        from ..io import check_output_dir

        check_output_dir(out, "out")
    record = run_toys(beta, w, lam, toys=ToyConfig(n=n, seed=seed, coverage=tuple(coverage), chunk=chunk),
                      truth=truth, **fit_kwargs)
    arrays = record["arrays"]
    if out is not None:
        from .toy_output import write_toys

        record = write_toys(record, out)
    from .toy_output import ToysResult

    return ToysResult(record, arrays)
