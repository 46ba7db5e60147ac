"""The SciPy script a physicist could write in an afternoon: the peer qfdjax is timed against.

Exact energies in plain NumPy (Gauss-Legendre panels on [r_min, R_c] and
[R_c, R], closed-form exterior flow), the mass scale S profiled analytically,
and `scipy.optimize.least_squares` (TRF, bounded) from Latin-hypercube starts.

    python benchmarks/peer_scipy.py fit  --beta 3.1 --w 0.015 --starts 8
    python benchmarks/peer_scipy.py scan --nb 16 --nw 10 --starts 4
    python benchmarks/peer_scipy.py toys --beta 3.1 --w 0.015 --n 20 --starts 4

Timed as whole processes by benchmarks/whole_process.py.  It deliberately
imports nothing from qfdjax.
"""

import argparse
import json
import time

import numpy as np
from scipy.optimize import least_squares
from scipy.stats import qmc

MASSES = np.array([0.511, 105.7, 1776.8])
SIGMA = 1e-4 * MASSES
LOWER = np.array([0.5, 0.01, 0.7, 0.05, 0.05, 0.7, 0.30, 0.02, 0.7])
UPPER = np.array([1.5, 0.10, 1.0, 0.30, 0.20, 1.0, 0.80, 0.15, 1.0])
R_MIN, R_MAX = 0.01, 10.0
T6, W6 = np.polynomial.legendre.leggauss(6)
T11, W11 = np.polynomial.legendre.leggauss(11)


def deficit(r, R_c, w, A):
    R = R_c + w
    q = 1.0 - (r / R) ** 2
    x = np.clip((r - R_c) / w, 0.0, 1.0)
    taper = 1.0 - x**3 * (6 * x**2 - 15 * x + 10)
    dtaper = -30 * x**2 * (x - 1) ** 2 / w
    return -A * q**2 * taper, -A * q * (2 * (-2 * r / R**2) * taper + q * dtaper)


def panel(lo, hi, t, wts, R_c, w, U, A):
    R = R_c + w
    r = 0.5 * (hi - lo)[:, None] * t[None, :] + 0.5 * (hi + lo)[:, None]
    half = 0.5 * (hi - lo)[:, None] * wts[None, :]
    d, dd = deficit(r, R_c[:, None], w, A[:, None])
    k = 3 * U[:, None] / R[:, None] ** 2
    a, b = (k * (R[:, None] ** 2 - r**2)) ** 2, (k * r**2) ** 2
    flow = (1 + d) * r**2 * (2 * a / 3 + 4 * b / 3)
    return [np.sum(half * f, 1) for f in (flow, d * d * r * r, dd * dd * r * r)]


def energies(beta, w, lam, R_c, U, A):
    R = R_c + w
    core = panel(np.full_like(R_c, R_MIN), R_c, T6, W6, R_c, w, U, A)
    layer = panel(R_c, R, T11, W11, R_c, w, U, A)
    exterior = np.pi * U**2 * ((2 * R_MAX**3 / 3 - R**6 / (3 * R_MAX**3)) - (2 * R**3 / 3 - R**3 / 3))
    circ = np.pi * (core[0] + layer[0]) + exterior
    return circ - 4 * np.pi * beta * (core[1] + layer[1]) + 4 * np.pi * lam * (core[2] + layer[2])


def residuals(x, beta, w, lam, masses=MASSES):
    p = x.reshape(3, 3)
    E = energies(beta, w, lam, p[:, 0], p[:, 1], p[:, 2])
    S = np.sum(masses * E / SIGMA**2) / np.sum(E * E / SIGMA**2)
    return (S * E - masses) / SIGMA


def fit_point(beta, w, starts, seed, masses=MASSES, extra=None):
    lam = 0.03 * beta * 0.88**2 / 11
    x0s = qmc.scale(qmc.LatinHypercube(d=9, seed=seed).random(starts), LOWER, UPPER)
    if extra is not None:
        x0s = np.vstack([extra, x0s])
    best = None
    for x0 in x0s:
        r = least_squares(residuals, x0, bounds=(LOWER, UPPER), method="trf", args=(beta, w, lam, masses),
                          x_scale="jac", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=2000)
        chi2 = float(2 * r.cost)
        if best is None or chi2 < best[0]:
            best = (chi2, r.x)
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["fit", "scan", "toys"])
    parser.add_argument("--n", type=int, default=20, help="toys (mode toys)")
    parser.add_argument("--beta", type=float, default=3.1)
    parser.add_argument("--w", type=float, default=0.015)
    parser.add_argument("--nb", type=int, default=16)
    parser.add_argument("--nw", type=int, default=10)
    parser.add_argument("--starts", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    if args.mode == "fit":
        chi2, x = fit_point(args.beta, args.w, args.starts, args.seed)
        out = {"chi2": chi2, "params": x.tolist()}
    elif args.mode == "toys":
        # The loop a physicist would write: fit the data, draw toys around the fit's prediction, refit each
        # (its Latin-hypercube starts plus the truth as a start, as qfdjax does).
        chi2_obs, truth = fit_point(args.beta, args.w, args.starts, args.seed)
        lam = 0.03 * args.beta * 0.88**2 / 11
        r = residuals(truth, args.beta, args.w, lam)
        prediction = MASSES + r * SIGMA
        rng = np.random.default_rng(args.seed)
        chi2 = [fit_point(args.beta, args.w, args.starts, args.seed + 1 + k, prediction + SIGMA * rng.standard_normal(3),
                          truth)[0] for k in range(args.n)]
        out = {"chi2_observed": chi2_obs, "toys": args.n, "p_value": float(np.mean(np.array(chi2) >= chi2_obs)),
               "chi2_toys_median": float(np.median(chi2))}
    else:
        chi2 = [fit_point(b, w, args.starts, args.seed + i)[0] for i, (b, w) in enumerate(
            (b, w) for b in np.linspace(2.95, 3.25, args.nb) for w in np.geomspace(0.005, 0.05, args.nw))]
        out = {"chi2_min": min(chi2), "points": len(chi2)}
    out["seconds"] = time.perf_counter() - t0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
