"""qfdjax's bounded LM against first-order and unconstrained baselines, all batched.

The question a reader asks of a custom optimiser: would a library one do?  Here the
same chi^2 (exact numerics, the seed's 9 parameters and bounds) is minimised at every
point of a (beta, w) grid from the same Latin-hypercube starts by

* qfdjax's projected Levenberg-Marquardt (`qfdjax.fitting.fit.fit_points`, the scan's path),
* projected Adam (optax): a gradient step, then a clip back into the unit box,
* optimistix's Levenberg-Marquardt on a logistic map u = sigmoid(z) (optimistix has no
  bounds; the map is the usual way round that, and the optimum's active bounds sit at z = +-inf),
* qfdjax's differential evolution (the seed's method) as the global baseline.

Every baseline runs as one vmapped, jitted call over points x starts (no Python loop over
lanes).  Reported per method: the best chi^2 per point relative to LM's, the fraction of
points within 1e-6 (relative) of LM's minimum or below it, and warm wall time.

    python benchmarks/optimizer_comparison.py --out benchmarks/results/optimizers-HOST.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

import qfdjax  # noqa: F401  (float64 and the compile cache, before jax is used)
import jax
import jax.numpy as jnp
import optax
import optimistix as optx

from qfdjax.fitting.fit import FitConfig, fit_points
from qfdjax.fitting.kernel import initial_starts
from qfdjax.fitting.likelihood import Likelihood
from qfdjax.fitting.params import ParameterSpace
from qfdjax.fitting.problem import Problem, make_numerics
from qfdjax.io import run_metadata
from qfdjax.model.constants import lambda_from_eta
from qfdjax.model.profiles import BoundaryLayer

AGREE_RTOL = 1e-6


def _grid(n_beta: int, n_w: int):
    beta, w = np.meshgrid(np.linspace(2.95, 3.25, n_beta), np.geomspace(0.005, 0.05, n_w), indexing="ij")
    beta, w = beta.ravel(), w.ravel()
    return beta, w, lambda_from_eta(beta)


def _lanes(problem: Problem, numerics, beta, w, lam, starts):
    """Flatten points x starts into lanes: the baselines see one (u0, beta, w, lam) per lane."""
    P, S, n = starts.shape
    rep = lambda v: np.repeat(v, S)
    return starts.reshape(P * S, n), rep(beta), rep(w), rep(lam)


def adam_fit(problem: Problem, numerics, beta, w, lam, starts, steps: int, learning_rate: float):
    """Projected Adam on chi^2(u) over the unit box; best chi^2 per point over its starts."""
    u0, b, ww, ll = _lanes(problem, numerics, beta, w, lam, starts)
    fixed = np.asarray(problem.box.fixed)
    opt = optax.adam(learning_rate)

    def chi2(u, b, ww, ll):
        r = problem.residuals(u, b, ww, ll, numerics)
        return jnp.sum(r * r)

    def one(u, b, ww, ll):
        def step(carry, _):
            u, state, best = carry
            value, grad = jax.value_and_grad(chi2)(u, b, ww, ll)
            updates, state = opt.update(jnp.where(fixed, 0.0, grad), state, u)
            u = jnp.clip(optax.apply_updates(u, updates), 0.0, 1.0)
            return (u, state, jnp.minimum(best, value)), None

        (u, _, best), _ = jax.lax.scan(step, (u, opt.init(u), jnp.inf), None, length=steps)
        return jnp.minimum(best, chi2(u, b, ww, ll))

    return jax.jit(jax.vmap(one)), (u0, b, ww, ll)


def optimistix_fit(problem: Problem, numerics, beta, w, lam, starts, steps: int):
    """optimistix.LevenbergMarquardt in z with u = sigmoid(z) (fixed entries held at their start)."""
    u0, b, ww, ll = _lanes(problem, numerics, beta, w, lam, starts)
    fixed = jnp.asarray(np.asarray(problem.box.fixed))
    solver = optx.LevenbergMarquardt(rtol=1e-12, atol=1e-12)
    eps = 1e-9  # a start on a bound would map to z = +-inf

    def one(u, b, ww, ll):
        u = jnp.clip(u, eps, 1.0 - eps)
        z0 = jnp.log(u) - jnp.log1p(-u)

        def residuals(z, _):
            return problem.residuals(jnp.where(fixed, u, jax.nn.sigmoid(z)), b, ww, ll, numerics)

        sol = optx.least_squares(residuals, solver, z0, max_steps=steps, throw=False)
        r = residuals(sol.value, None)
        return jnp.sum(r * r)

    return jax.jit(jax.vmap(one)), (u0, b, ww, ll)


def _timed(fn, args, repeats: int = 2):
    t0 = time.perf_counter()
    out = np.asarray(jax.block_until_ready(fn(*args)))
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        warm.append(time.perf_counter() - t0)
    return out, cold, float(np.min(warm))


def _summary(name: str, chi2_points: np.ndarray, reference: np.ndarray, cold: float, warm: float, **extra) -> dict:
    rel = (chi2_points - reference) / np.maximum(np.abs(reference), 1e-300)
    return {"method": name, "cold_s": cold, "warm_s": warm,
            "agree_or_better": float(np.mean(rel <= AGREE_RTOL)),
            "median_rel_excess": float(np.median(rel)), "worst_rel_excess": float(np.max(rel)),
            "chi2": chi2_points.tolist(), **extra}


def compare(n_beta: int = 16, n_w: int = 10, starts: int = 8, adam_steps: int = 2000,
            adam_rates=(1e-2, 1e-3), optx_steps: int = 400, de_maxiter: int = 1000, seed: int = 0) -> dict:
    beta, w, lam = _grid(n_beta, n_w)
    space = ParameterSpace.seed()
    problem = Problem.build(space, Likelihood.masses_only(space.leptons), BoundaryLayer())
    numerics = make_numerics("exact", w)
    u_starts, _ = initial_starts(space, starts, np.arange(beta.size), seed)
    rows = []

    def lm_call():
        return fit_points(beta, w, lam, config=FitConfig(starts=starts, seed=seed))["chi2"]

    t0 = time.perf_counter()
    reference = np.asarray(lm_call())
    lm_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    lm_call()
    rows.append(_summary("qfdjax LM (projected, bounded)", reference, reference, lm_cold,
                         time.perf_counter() - t0, starts=starts))

    for rate in adam_rates:
        fn, args = adam_fit(problem, numerics, beta, w, lam, u_starts, adam_steps, rate)
        lanes, cold, warm = _timed(fn, args)
        rows.append(_summary(f"optax Adam (projected), lr {rate:g}", lanes.reshape(beta.size, -1).min(axis=1),
                             reference, cold, warm, steps=adam_steps, starts=starts))

    fn, args = optimistix_fit(problem, numerics, beta, w, lam, u_starts, optx_steps)
    lanes, cold, warm = _timed(fn, args)
    rows.append(_summary("optimistix LM (sigmoid map)", lanes.reshape(beta.size, -1).min(axis=1), reference,
                         cold, warm, max_steps=optx_steps, starts=starts))

    def de_call():
        return fit_points(beta, w, lam, config=FitConfig(method="de", de_maxiter=de_maxiter, seed=seed))["chi2"]

    t0 = time.perf_counter()
    de = np.asarray(de_call())
    de_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    de_call()
    rows.append(_summary("qfdjax DE (seed's method)", de, reference, de_cold, time.perf_counter() - t0,
                         max_iter=de_maxiter))
    return {"grid": {"beta": [float(beta.min()), float(beta.max()), n_beta],
                     "w": [float(w.min()), float(w.max()), n_w, "log"]},
            "agree_rtol": AGREE_RTOL, "rows": rows, "metadata": run_metadata()}


def print_table(result: dict) -> None:
    print(f"{'method':<38}{'agree/better':>13}{'median excess':>15}{'worst excess':>14}{'cold s':>9}{'warm s':>9}")
    for r in result["rows"]:
        print(f"{r['method']:<38}{r['agree_or_better']:>13.0%}{r['median_rel_excess']:>15.2e}"
              f"{r['worst_rel_excess']:>14.2e}{r['cold_s']:>9.1f}{r['warm_s']:>9.2f}")
    print(f"(excess: (chi2 - chi2_LM) / chi2_LM per point, best over starts; agree/better: excess <= "
          f"{result['agree_rtol']:g})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--beta-points", type=int, default=16)
    p.add_argument("--w-points", type=int, default=10)
    p.add_argument("--starts", type=int, default=8)
    p.add_argument("--adam-steps", type=int, default=2000)
    p.add_argument("--optx-steps", type=int, default=400)
    p.add_argument("--de-maxiter", type=int, default=1000)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    result = compare(args.beta_points, args.w_points, args.starts, args.adam_steps, optx_steps=args.optx_steps,
                     de_maxiter=args.de_maxiter)
    result["command"] = " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])
    result["machine"] = platform.node()
    print_table(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
