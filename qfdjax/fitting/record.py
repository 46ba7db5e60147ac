"""A fit's JSON record: one point's results, convergence evidence, bound costs, identifiability and
HESSE errors as plain Python values (fit.py runs the fit; this turns its host arrays into the record)."""

from __future__ import annotations

from typing import Any
import numpy as np

from .certificate import UNCERTIFIED_REASONS
from .spectra import FLAT_RTOL
from .params import ParameterSpace


def point_record(out: dict, i, space: ParameterSpace) -> dict:
    """One point's results as plain Python values (JSON-ready)."""
    names = space.names
    eig = out["hessian_eigenvalues"][i]
    record: dict[str, Any] = {
        "chi2": float(out["chi2"][i]),
        "params": [float(v) for v in out["params"][i]],
        "param_names": list(names),
        "S": float(out["S"][i]),
        "at_bounds": [n for n, lo, hi in zip(names, out["at_lower"][i], out["at_upper"][i], strict=True) if lo or hi],
        "bound_side": {n: ("lower" if lo else "upper") for n, lo, hi in
                       zip(names, out["at_lower"][i], out["at_upper"][i], strict=True) if lo or hi},
        "energies": {k: [float(v) for v in out[k][i]] for k in ("E_total", "E_circ", "E_stab", "E_grad")},
        "masses": [float(v) for v in out["masses"][i]],
        "pulls": [float(v) for v in out["pulls"][i]],
        "convergence": {
            "converged": bool(out["converged"][i]),
            "optimizer_done": bool(out["optimizer_done"][i]),
            "edm": float(out["edm"][i]),
            "flat_direction_gradient": float(out["flat_slope"][i]),
            "uncertified_reason": None if out["converged"][i] else UNCERTIFIED_REASONS[int(out["uncertified_reason"][i])],
            "projected_gradient_rel": float(out["projected_gradient"][i]),
            "chi2_starts": [float(v) for v in out["chi2_starts"][i]],
            "chi2_spread": float(out["chi2_spread"][i]),
            "starts_within_0.1": int(out["starts_within"][i]),
            "best_start": int(out["best_start"][i]),
            "steps": [int(v) for v in out["steps"][i]],
            "hessian_eigenvalues_free": [float(v) for v in eig if np.isfinite(v)],
            "hessian_finite": bool(out["hessian_finite"][i]),
            "finite_result": bool(out["finite_result"][i]),
        },
        "identifiability": {
            "hessian_eigenvalues_free_and_beta": [float(v) for v in out["hessian_eigenvalues_with_beta"][i]
                                                  if np.isfinite(v)],
            "beta_profile_curvature": float(out["beta_curvature"][i]),
            # A difference of large terms: only what exceeds its rounding uncertainty is curvature.
            "beta_profile_curvature_uncertainty": float(out["beta_curvature_uncertainty"][i]),
            "sigma_beta": (float(np.sqrt(2.0 / out["beta_curvature"][i]))
                           if out["beta_curvature"][i] > out["beta_curvature_uncertainty"][i] else None),
        },
    }
    record["bound_costs"] = bound_costs(out, i, names)
    record["dchi2_dbeta"] = float(out["dchi2_dbeta"][i])
    record["dchi2_dw"] = float(out["dchi2_dw"][i])
    record["identifiability"].update(identifiability_record(out, i, names))
    record |= hesse_errors(out["hessian"][i], ~(out["at_lower"][i] | out["at_upper"][i]), space)
    if "C_g" in out:
        record["C_g"] = float(out["C_g"][i])
        record["g_model"] = [float(v) for v in out["g_model"][i]]
    for key in out:
        if key.startswith("chi2_") and key not in ("chi2_starts", "chi2_spread"):
            record[key] = float(out[key][i])
    if np.isfinite(out["de_chi2"][i]):
        record["de"] = {"chi2": float(out["de_chi2"][i]), "generations": int(out["de_generations"][i]),
                        "converged": bool(out["de_converged"][i])}
    return record


def hesse_errors(hessian: np.ndarray, not_at_bound, space: ParameterSpace, rtol: float = FLAT_RTOL) -> dict:
    """HESSE-style errors and covariance of the free parameters: cov = 2 H^-1 (chi^2 = -2 ln L + const).

    H is the chi^2 Hessian in natural units with S* profiled, over the
    parameters that are neither fixed, shared followers, nor on a bound.  A
    singular block has no covariance: the record then names the flat
    combinations (eigenvectors with eigenvalue below `rtol` of the largest)
    and reports no errors and a null covariance, rather than numbers that
    mean nothing.  Fixed and on-bound parameters have zero rows and columns
    in a defined covariance (they do not move at this optimum).
    """
    names = space.names
    n = len(names)
    free = np.asarray(not_at_bound, bool) & ~np.asarray(space.fixed)
    idx = np.flatnonzero(free)
    covariance = np.zeros((n, n))
    # An undefined covariance is null, not zeros: a program reading zeros would see no uncertainty.
    out: dict[str, Any] = {"errors": {}, "covariance": None, "hessian_singular": False, "flat_combinations": []}
    if idx.size == 0:
        return out
    # In unit-box coordinates (each parameter in its own range), as the diagnostics cut flat directions.
    _, span = space.arrays()
    unit = span[idx]
    block = np.asarray(hessian)[np.ix_(idx, idx)] * unit[:, None] * unit[None, :]
    if not np.all(np.isfinite(block)):
        out["hessian_singular"] = True
        return out
    eigval, eigvec = np.linalg.eigh(0.5 * (block + block.T))
    scale = np.max(np.abs(eigval)) if eigval.size else 0.0
    flat = eigval <= rtol * scale
    if np.any(flat):
        sub = [names[k] for k in idx]
        out["hessian_singular"] = True
        # Unit-norm directions in unit-box coordinates, as the identifiability's null space is written.
        out["flat_combinations"] = [describe_direction(v / np.linalg.norm(v), sub) for v in eigvec[:, flat].T]
        return out
    cov = 2.0 * (eigvec / eigval) @ eigvec.T * unit[:, None] * unit[None, :]
    cov = 0.5 * (cov + cov.T)  # the product is symmetric only to rounding
    covariance[np.ix_(idx, idx)] = cov
    out["covariance"] = covariance.tolist()
    out["errors"] = {names[k]: float(np.sqrt(cov[j, j])) for j, k in enumerate(idx)}
    return out


def bound_costs(out: dict, i, names) -> dict:
    """{"tau.U.upper": dchi2_min/d(bound), ...} for the bounds active at point i, in natural units."""
    costs = {}
    for side in ("lower", "upper"):
        for name, value in zip(names, out[f"bound_cost_{side}"][i], strict=True):
            if np.isfinite(value):
                costs[f"{name}.{side}"] = float(value)
    return costs


def describe_direction(weights, names, floor: float = 0.05) -> str:
    """A null-space direction as "0.71 mu.U - 0.70 tau.R_c": the weights of a unit-norm direction in unit-box
    coordinates (each parameter measured in its own bound range), weights below `floor` dropped."""
    order = np.argsort(-np.abs(weights))
    terms = [(weights[k], names[k]) for k in order if abs(weights[k]) >= floor]
    if terms and terms[0][0] < 0:
        terms = [(-v, n) for v, n in terms]
    text = " ".join(f"{'-' if v < 0 else '+'} {abs(v):.2f} {n}" for v, n in terms)
    return text.lstrip("+ ").strip()


def identifiability_record(out: dict, i, names) -> dict:
    """Counting and rank: data vs free parameters (+ profiled constants) and the Jacobian's null space."""
    n_data, n_prof = int(out["n_data"][i]), int(out["n_profiled"][i])
    n_free, rank = int(out["free_count"][i]), int(out["jacobian_rank"][i])
    null = [row for row in out["null_space"][i] if np.all(np.isfinite(row))]
    directions = [describe_direction(row, names) for row in null]
    dof = n_data - n_prof - rank
    words = (f"{n_data} data against {n_free} free parameters and {n_prof} profiled constant(s); the residual "
             f"Jacobian has rank {rank}" + (f", so {len(directions)} free direction(s) are not constrained by the "
                                            f"data (unit-norm, in unit-box coordinates: each parameter over its "
                                            f"bound range): {'; '.join(directions)}" if directions else ""))
    return {"n_data": n_data, "n_free": n_free, "n_profiled": n_prof, "jacobian_rank": rank,
            "degrees_of_freedom": dof, "underdetermined": n_free + n_prof > n_data,
            "null_space": directions, "profile_hessian_beta_w": out["profile_hessian"][i].tolist(),
            "summary": words}
