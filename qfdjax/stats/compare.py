"""Nested models at one (beta, w): does the extra freedom buy a real improvement?

The alternative's feasible set must contain the null's (`nesting_problems` says why not):
every null box inside the alternative's, every sharing of the alternative kept by the null.
Then chi²_null >= chi²_alt at the true minima, and

- Wilks: Δchi² ~ chi²(Δndf) asymptotically, Δndf = free parameters of alt - of null.  Not exact
  here: parameters on bounds (Chernoff's mixtures) and degenerate directions break its conditions;
  hence beside it
- the toys' p: toys drawn from the null's best fit (the convention of `qfdjax toys`), both models
  refitted on every toy as lanes of the same compiled calls; p = (1 + #{Δchi²_toy >= Δchi²_obs}) /
  (1 + toys), over toys whose two fits are both certified;
- AIC = chi² + 2k and BIC = chi² + k ln n, k counting the free parameters and the profiled
  constants (S, C_g), n the data.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError, check_range
from ..fitting.certificate import chi2_text
from ..fitting.params import ParameterSpace


def free_count(space: ParameterSpace) -> int:
    return int(np.sum(~space.fixed))


def nesting_problems(null: ParameterSpace, alt: ParameterSpace) -> list[str]:
    """Why the null is not a special case of the alternative (empty when it is)."""
    if null.leptons != alt.leptons:
        return [f"the models fit different leptons ({','.join(null.leptons)} vs {','.join(alt.leptons)})"]
    problems = []
    for i, name in enumerate(null.names):
        if null.lower[i] < alt.lower[i] or null.upper[i] > alt.upper[i]:
            problems.append(f"{name}: null range [{null.lower[i]:g}, {null.upper[i]:g}] is not inside the "
                            f"alternative's [{alt.lower[i]:g}, {alt.upper[i]:g}]")
    null_leader = null.leader_index()
    for follower, leader in alt.tied:
        same_value = null.lower[follower] == null.upper[follower] == null.lower[leader] == null.upper[leader]
        if null_leader[follower] != null_leader[leader] and not same_value:
            problems.append(f"the alternative shares {alt.names[follower]} with {alt.names[leader]} but the null "
                            f"does not")
    if not problems and null == alt:
        problems.append("the two models are the same")
    return problems


def nested_statistics(chi2_null: float, chi2_alt: float, k_null: int, k_alt: int, n_data: int,
                      toy_delta=None) -> dict:
    """Δchi², Wilks' p, the toys' p, AIC and BIC of a nested pair (shared by the model and the checks)."""
    from jax.scipy.special import gammaincc

    delta = chi2_null - chi2_alt
    dndf = k_alt - k_null
    aic = {"null": chi2_null + 2 * k_null, "alt": chi2_alt + 2 * k_alt}
    bic = {"null": chi2_null + k_null * math.log(n_data), "alt": chi2_alt + k_alt * math.log(n_data)}
    out: dict = {"delta_chi2": delta, "delta_ndf": dndf,
                 "wilks_p": float(gammaincc(dndf / 2.0, max(delta, 0.0) / 2.0)) if dndf > 0 else None,
                 "aic": aic, "bic": bic, "delta_aic": aic["null"] - aic["alt"], "delta_bic": bic["null"] - bic["alt"]}
    if toy_delta is not None:
        toy_delta = np.asarray(toy_delta, float)
        exceed = int(np.sum(toy_delta >= delta))
        out["toys_p"] = (1 + exceed) / (1 + toy_delta.size)
        out["toys_exceeding"] = exceed
        out["toys_used"] = int(toy_delta.size)
    return out


def compare(null: ParameterSpace, alt: ParameterSpace, beta: float, w: float, *, toys: int = 0, seed: int = 0,
            chunk: int = 256, eta: float | None = None, observables=("mass",), config=None, numerics: str = "exact",
            progress=None) -> dict:
    """Fit both models at (beta, w), then (with `toys`) refit both on toys drawn from the null's best fit."""
    from ..fitting.fit import FitConfig, fit, fit_points, resolve_lambda
    from ..fitting.observables import build_likelihood
    from .toys import prediction_at, toy_data

    problems = nesting_problems(null, alt)
    if problems:
        raise InputError("the models are not nested (the null must be a special case of the alternative): "
                         + "; ".join(problems))
    check_range("toys", toys, lower=0, upper=10_000_000, integer=True)
    check_range("chunk", chunk, lower=1, upper=1_000_000, integer=True)
    config = config or FitConfig()
    likelihood = build_likelihood(null.leptons, tuple(observables))
    kwargs = dict(eta=eta, numerics=numerics, config=config, observables=tuple(observables))
    fits = {"null": fit(beta, w, space=null, **kwargs), "alt": fit(beta, w, space=alt, **kwargs)}
    # The alternative contains the null's optimum: started there, it can only go lower.
    fits["alt"] = fit(beta, w, space=alt, start=np.asarray(fits["null"]["params"]), **kwargs) \
        if fits["alt"]["chi2"] > fits["null"]["chi2"] else fits["alt"]
    n_data = likelihood.data_count()
    k_null, k_alt = (free_count(s) + likelihood.profiled_count() for s in (null, alt))
    toy_delta, toy_record = None, None
    if toys:
        lam = resolve_lambda(beta, None, eta)
        truth = np.asarray(fits["null"]["params"])
        prediction = prediction_at(truth, beta, w, lam, numerics, null, likelihood)
        sigma = likelihood.data_sigma()
        deltas, certified = [], []
        for start in range(0, toys, chunk):
            ids = np.arange(start, min(toys, start + chunk))
            data = toy_data(prediction, sigma, seed, ids)
            ones = np.ones(len(ids))
            both = [fit_points(beta * ones, w * ones, lam * ones, numerics=numerics, config=config, space=space,
                               likelihood=likelihood, data=data, point_ids=ids,
                               extra_starts=np.broadcast_to(truth, (len(ids), truth.size)))
                    for space in (null, alt)]
            deltas.append(both[0]["chi2"] - both[1]["chi2"])
            certified.append(both[0]["converged"] & both[1]["converged"])
            if progress is not None:
                progress(int(ids[-1]) + 1, toys)
        delta_all, ok = np.concatenate(deltas), np.concatenate(certified)
        toy_delta = delta_all[ok]
        toy_record = {"n": toys, "seed": seed, "certified": int(ok.sum()),
                      "delta_chi2_quantiles": {q: float(np.quantile(toy_delta, float(q))) for q in
                                               ("0.5", "0.9", "0.95", "0.99")} if ok.any() else None,
                      "negative_delta": int(np.sum(toy_delta < -1e-9 * np.maximum(1.0, np.abs(toy_delta))))}
    stats = nested_statistics(fits["null"]["chi2"], fits["alt"]["chi2"], k_null, k_alt, n_data, toy_delta)
    return {"kind": "compare", "beta": beta, "w": w, "n_data": n_data,
            "null": _model_record(fits["null"], null, k_null), "alt": _model_record(fits["alt"], alt, k_alt),
            **stats, "toys": toy_record,
            "conventions": ("toys drawn from the null's best fit, data ~ N(prediction, sigma); both models refitted "
                            "per toy; p_toys = (1 + exceeding) / (1 + certified toys); k counts free parameters "
                            "and profiled constants; Wilks assumes interior optima and identifiable parameters")}


def _model_record(fit_result, space: ParameterSpace, k: int) -> dict:
    return {"chi2": fit_result["chi2"], "free": free_count(space), "k": k, "certified": bool(fit_result.valid),
            "bounds": space.as_dict(), "shared": space.shared_groups(), "at_bounds": fit_result["at_bounds"],
            "params": dict(zip(space.names, fit_result["params"], strict=True))}


def compare_text(r: dict) -> str:
    lines = [f"nested comparison at beta = {r['beta']:.6g}, w = {r['w']:.6g} ({r['n_data']} data)",
             f"  null: chi2 = {chi2_text(r['null']['chi2'], '.8g')}, {r['null']['free']} free parameters (k = {r['null']['k']})"
             + ("" if r["null"]["certified"] else " NOT CERTIFIED"),
             f"  alt:  chi2 = {chi2_text(r['alt']['chi2'], '.8g')}, {r['alt']['free']} free parameters (k = {r['alt']['k']})"
             + ("" if r["alt"]["certified"] else " NOT CERTIFIED"),
             f"  delta chi2 = {r['delta_chi2']:.6g} for delta ndf = {r['delta_ndf']}"]
    if r["wilks_p"] is None:
        lines.append("  Wilks: undefined (the alternative frees no parameter, only widens bounds): use the toys' p")
    else:
        lines.append(f"  Wilks p = {r['wilks_p']:.4g} (asymptotic; not exact with bounds or degenerate parameters)")
    t = r.get("toys")
    if t:
        lines.append(f"  toys' p = {r['toys_p']:.4g} ({r['toys_exceeding']} of {t['certified']} certified toys of "
                     f"{t['n']} with delta chi2 >= observed)")
    lines.append(f"  delta AIC (null - alt) = {r['delta_aic']:.4g}; delta BIC = {r['delta_bic']:.4g} "
                 f"(positive favours the alternative)")
    return "\n".join(lines)
