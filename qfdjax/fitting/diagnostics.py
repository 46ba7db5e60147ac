"""Convergence evidence and per-point diagnostics of finished fits.

A fit is certified only with evidence: the optimiser stopped on its own
criterion, its projected gradient is small (a stationary point of the bounded
problem), and at least two starts agree.  Beside that, per point: S*, energies,
masses, pulls, active bounds, and the Hessian in (parameters, beta), whose
spectrum shows degeneracies and whose Schur complement is beta's profile
curvature.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..model.numerics import AbstractNumerics
from .kernel import pad_index, padded_size, run_points
from .problem import Problem

# Two fits agree when their chi^2 differ by at most this (the criterion).
AGREEMENT_DCHI2 = 0.1
# A fit is certified only if its projected gradient (relative to chi^2, unit box)
# is at most this: a stationary point of the bounded problem, not just a stopped
# run.  Free directions at these optima are either flat (tiny gradient) or stiff
# (Hessian eigenvalues ~1e15 in the unit box), where rounding alone leaves
# gradients of ~1e-6 chi^2 and a gradient of 1e-4 chi^2 is worth < 1e-5 in chi^2.
PROJECTED_GRADIENT_CERTIFY = 1e-4
BOUND_TOL = 1e-9


def _diagnostics_body(numerics, beta, w, lam, u_best, problem: Problem) -> dict:
    def one(num, b, ww, l, u):
        state = problem.state(u, b, ww, l, num)
        pulls = problem.likelihood.residuals(state)
        x = problem.box.from_unit(u)
        lam_per_beta = l / b

        def chi2_aug(z):
            return problem.chi2_natural(z[:-1], z[-1], ww, lam_per_beta * z[-1], num)

        # Forward-over-forward: with ~10 variables it compiles faster than jax.hessian.
        hess_aug = jax.jacfwd(jax.jacfwd(chi2_aug))(jnp.concatenate([x, jnp.atleast_1d(b)]))
        at_lo = u <= BOUND_TOL
        at_hi = u >= 1.0 - BOUND_TOL
        fixed = problem.box.fixed
        terms = problem.likelihood.terms(state)
        return dict(
            S=state.S, E_total=state.energies.total, E_circ=state.energies.E_circ,
            E_stab=state.energies.E_stab, E_grad=state.energies.E_grad,
            masses=state.S * state.energies.total, pulls=pulls, at_lower=at_lo & ~fixed,
            at_upper=at_hi & ~fixed, hessian_with_beta=hess_aug, free=~(at_lo | at_hi | fixed), **terms,
        )

    return eqx.filter_vmap(one, in_axes=(numerics.point_axes(), 0, 0, 0, 0))(numerics, beta, w, lam, u_best)


def point_diagnostics(problem: Problem, numerics: AbstractNumerics, beta, w, lam, u_best, mesh=None) -> dict:
    """S*, energies, masses, pulls and the Hessian in (parameters, beta) per point (host arrays).

    The Hessian is taken with lambda following beta at fixed lambda/beta, as the
    eta calibration does; `hessian_spectra` turns it into eigenvalues and
    beta's profile curvature on the host.  `numerics` is per point (P entries).
    """
    P = len(u_best)
    idx = pad_index(P, padded_size(P, 1, mesh))
    args = tuple(np.asarray(a)[idx] for a in (beta, w, lam, u_best))
    out = run_points("diagnostics", _diagnostics_body, mesh, numerics.select(idx), args, (problem,))
    return {k: np.asarray(v)[:P] for k, v in out.items()}


def params_from_unit(problem: Problem, u) -> np.ndarray:
    """Natural parameters of unit-box points, on the host."""
    box = problem.box
    lower, span, leader = (np.asarray(v) for v in (box.lower, box.span, box.leader))
    return (lower + np.clip(np.asarray(u), 0.0, 1.0) * span)[..., leader]


def hessian_spectra(hess_aug: np.ndarray, free: np.ndarray) -> dict:
    """Eigenvalues and beta curvature from Hessians in (parameters, beta), on the host.

    Per point: eigenvalues of the free-parameter block (flat directions are
    degeneracies) and of the block with beta added, NaN-padded to fixed length;
    the Schur complement H_bb - H_bF H_FF^+ H_Fb, the curvature of chi^2_min
    along beta, so sigma_beta = sqrt(2 / curvature).  Done in NumPy: XLA's
    batched CPU eigensolvers hung here on some inputs (jax 0.10.2), NumPy's
    LAPACK does not, and a 10 x 10 eigensolve per point is cheap anyway.
    """
    H = np.where(np.isfinite(hess_aug), hess_aug, 0.0)
    points, size = H.shape[0], H.shape[1]
    n = size - 1
    eig = np.full((points, n), np.nan)
    eig_aug = np.full((points, size), np.nan)
    curvature = np.full(points, np.nan)
    # Points share a handful of free/active patterns: one batched solve per pattern.
    patterns, which = np.unique(np.asarray(free, bool), axis=0, return_inverse=True)
    for k, pattern in enumerate(patterns):
        rows = np.flatnonzero(which.ravel() == k)
        f = np.flatnonzero(pattern)
        fa = np.append(f, n)
        block = H[np.ix_(rows, f, f)]
        if f.size:
            eig[rows, : f.size] = np.linalg.eigvalsh(block)
        eig_aug[rows, : fa.size] = np.linalg.eigvalsh(H[np.ix_(rows, fa, fa)])
        coupling = H[np.ix_(rows, f, [n])][..., 0]
        if f.size:
            inverse = np.linalg.pinv(block, rcond=1e-12, hermitian=True)
            curvature[rows] = H[rows, n, n] - np.einsum("pi,pij,pj->p", coupling, inverse, coupling)
        else:
            curvature[rows] = H[rows, n, n]
    return {"hessian_eigenvalues": eig, "hessian_eigenvalues_with_beta": eig_aug, "beta_curvature": curvature,
            "hessian_finite": np.all(np.isfinite(hess_aug), axis=(1, 2))}



def summarize_points(problem: Problem, numerics, beta, w, lam, solution: dict, mesh=None) -> dict:
    """Host-side arrays of results and convergence evidence for every point."""
    chi2_s = np.asarray(solution["chi2_starts"])
    finite = np.where(np.isfinite(chi2_s), chi2_s, np.inf)
    best = np.argmin(finite, axis=1)
    rows = np.arange(chi2_s.shape[0])
    u_best = np.asarray(solution["u_starts"])[rows, best]
    diag = point_diagnostics(problem, numerics, beta, w, lam, u_best, mesh)
    diag.update(hessian_spectra(diag.pop("hessian_with_beta"), diag.pop("free")))
    chi2 = finite[rows, best]
    within = np.sum(finite - chi2[:, None] <= AGREEMENT_DCHI2, axis=1)
    spread = np.max(np.where(np.isfinite(finite), finite, -np.inf), axis=1) - chi2
    pg = np.asarray(solution["pgrad_starts"])[rows, best]
    done = np.asarray(solution["done_starts"])[rows, best]
    starts = chi2_s.shape[1]
    converged = done & (pg <= PROJECTED_GRADIENT_CERTIFY) & ((within >= 2) | (starts == 1))
    params = params_from_unit(problem, u_best)
    return dict(
        chi2=chi2, params=params, u=np.asarray(u_best), best_start=best, chi2_starts=chi2_s,
        starts_within=within, chi2_spread=spread, projected_gradient=pg, steps=np.asarray(solution["steps_starts"]),
        optimizer_done=done, converged=converged, de_chi2=np.asarray(solution["de_chi2"]),
        de_generations=np.asarray(solution["de_generations"]), de_converged=np.asarray(solution["de_converged"]),
        **diag,
    )
