"""A toys run's statistics: the goodness-of-fit p-value, interval coverage with binomial errors, and the
fractions of toys on each bound -- over the certified toys and over all of them, with their counts.

Why both: a toy fit that is not certified is not a random subset of the toys (at the seed's bounds
they were all inexact fits), so a figure over certified toys alone can be biased; the two side by side
show whether it is.
"""

from __future__ import annotations

from typing import Any
import math

import numpy as np

# The two confidence levels reported: Delta chi^2 = 1 and 4 for one parameter.
LEVELS = {"0.6827": 1.0, "0.9545": 4.0}


def binomial(successes: int, trials: int) -> tuple[float, float]:
    """A fraction and its binomial standard error (0 trials: NaN)."""
    if trials == 0:
        return math.nan, math.nan
    p = successes / trials
    return p, math.sqrt(max(p * (1.0 - p), 0.0) / trials)


def summarize_toys(arrays: dict, chi2_observed: float, ndf: int, names, free, coverage) -> dict:
    """p-value of the observed chi^2_min, coverage fractions with binomial errors, bound fractions."""
    valid = np.asarray(arrays["valid"], bool)
    n_valid = int(valid.sum())
    chi2_all = np.asarray(arrays["chi2"], float)
    chi2 = chi2_all[valid]
    exceed = int(np.sum(chi2 >= chi2_observed))
    p: float | None
    p_err: float | None
    p_all: float | None
    p_all_err: float | None
    p, p_err = binomial(exceed, n_valid)
    # Every toy, certified or not, beside the certified ones: dropping the uncertified toys could bias the
    # sample (they are not a random subset), so both figures are given with their counts.
    finite_all = np.isfinite(chi2_all)
    p_all, p_all_err = binomial(int(np.sum(chi2_all[finite_all] >= chi2_observed)), int(finite_all.sum()))
    if ndf <= 0:
        p = p_err = p_all = p_all_err = None
    out = {"ndf": int(ndf), "chi2_observed": chi2_observed, "n_valid": n_valid, "p_value": p,
           "p_value_error": p_err, "n_all": int(chi2_all.size), "n_all_finite": int(finite_all.sum()),
           "p_value_all": p_all, "p_value_all_error": p_all_err,
           "chi2_toys_mean_all": float(np.mean(chi2_all[finite_all])) if finite_all.any() else math.nan,
           "chi2_toys_median_all": float(np.median(chi2_all[finite_all])) if finite_all.any() else math.nan,
           # With no degrees of freedom every toy (and the data) fits exactly: chi^2 is rounding, not a test.
           "goodness_of_fit": "defined" if ndf > 0 else "undefined: no degrees of freedom (every toy fits exactly)",
           # No toy as extreme as the data: the 95 % upper limit on p from zero successes in n trials.
           "p_value_upper_95": (1.0 - 0.05 ** (1.0 / n_valid)) if exceed == 0 and n_valid and ndf > 0 else None,
           "chi2_toys_mean": float(np.mean(chi2)) if n_valid else math.nan,
           "chi2_toys_median": float(np.median(chi2)) if n_valid else math.nan}
    on_bound = np.asarray(arrays["at_lower"]) | np.asarray(arrays["at_upper"])
    out["fraction_on_bound"] = {name: float(np.mean(on_bound[valid, j])) if n_valid else math.nan
                                for j, name in enumerate(names) if name in free}
    coverage_out: dict[str, dict[str, Any]] = {}
    out["coverage"] = coverage_out
    for name in coverage:
        # A global's own search may fail where the toy's fit did not: counted apart, never mixed into the GOF.
        use = valid & np.asarray(arrays.get(f"valid_{name}", valid), bool)
        n_use = int(use.sum())
        dchi2 = np.asarray(arrays[f"dchi2_truth_{name}"], float)[use]
        entry = {"n": n_use, "nominal": {cl: float(cl) for cl in LEVELS},
                 "min_dchi2_truth": float(np.min(dchi2)) if n_use else math.nan}
        for cl, level in LEVELS.items():
            fraction, error = binomial(int(np.sum(dchi2 <= level)), n_use)
            entry[cl] = fraction
            entry[f"{cl}_error"] = error
        everything = np.asarray(arrays[f"dchi2_truth_{name}"], float)
        everything = everything[np.isfinite(everything)]
        every_toy: dict[str, Any] = {"n": int(everything.size)}
        for cl, level in LEVELS.items():
            fraction, error = binomial(int(np.sum(everything <= level)), int(everything.size))
            every_toy[cl] = fraction
            every_toy[f"{cl}_error"] = error
        entry["all"] = every_toy
        coverage_out[name] = entry
    if "uncertified_reason" in arrays:
        from ..fitting.certificate import UNCERTIFIED_REASONS

        counts = np.bincount(np.asarray(arrays["uncertified_reason"], int), minlength=len(UNCERTIFIED_REASONS))
        out["uncertified_reasons"] = {UNCERTIFIED_REASONS[k]: int(c) for k, c in enumerate(counts) if k and c}
    return out
