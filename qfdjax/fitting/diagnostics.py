"""Convergence evidence and per-point diagnostics of finished fits.

A fit is certified only with evidence: the optimiser stopped on its own
criterion, a Newton step would gain nothing worth counting (the EDM, relative to
max(chi^2, 1): a stationary point of the bounded problem at any chi^2 scale), at
least two starts agree (or the fit is exact to rounding, which no start can
undercut), and chi^2, S* and the energies are finite; a fit that is
not certified records the first criterion it fails.  Beside that, per point: S*, energies,
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
from .kernel import point_data, run_padded
from .optimize.lm import CHI2_SCALE_FLOOR, projected_gradient_norm
from .problem import Problem
from .certificate import AGREEMENT_DCHI2, EDM_CERTIFY, PROJECTED_GRADIENT_CERTIFY, UNCERTIFIED_REASONS
from .spectra import hessian_spectra, newton_decrement, newton_polish

BOUND_TOL = 1e-9
EXACT_FIT_CHI2 = 1e-6
# Starts that end within this fraction of the lowest chi^2 (never less than this
# many units of chi^2) reached the same optimum: LM stops at 1e-13 relative.
SAME_OPTIMUM_RTOL = 1e-12
# One Newton step polishes every optimum: a second changes no derived number (measured, 16 x 10 grid).
POLISH_STEPS = 1


def _integral_jet(problem: Problem, num, w, R_c):
    """Each lepton's four unit integrals with their first and second derivatives in (R_c, w).

    They are the only part of the energies that goes through the quadrature, and they depend on
    (R_c, w) alone (model/types.py): U, A, beta and lambda enter in closed form.  Leaves (L,),
    (L, 2) and (L, 2, 2), from one traced pass (forward over forward in two directions).  The energies'
    5 x 5 derivatives took 25 second-order directions through the quadrature before: a diagnostics pass
    of the seed's fit 42 -> 17 us per point (512 points, 2 CPU cores), its kernel compiling as fast.
    """
    w_l = jnp.broadcast_to(w, R_c.shape)

    def integrals(y):
        return num.unit_integrals(problem.profile, w_l + y[1], R_c + y[0])

    def first(y):
        I, dI = jax.vmap(lambda t: jax.jvp(integrals, (y,), (t,)), out_axes=(None, -1))(jnp.eye(2, dtype=R_c.dtype))
        return dI, (I, dI)

    I2, (I0, I1) = jax.jacfwd(first, has_aux=True)(jnp.zeros(2, dtype=R_c.dtype))
    return I0, I1, I2


def _energy_jet(problem: Problem, num, beta, w, lam, x):
    """Energies of every lepton with their first and second derivatives in (R_c, U, A, beta, w).

    Each lepton's energies depend only on its own (R_c, U, A) and the shared (beta, w), with lambda
    following beta at fixed lambda/beta (the eta calibration), and only their four unit integrals go
    through the quadrature (`_integral_jet`).  The 5 x 5 derivatives are those of the closed form in
    (U, A, beta, lambda) around the integrals' second-order Taylor polynomial in (R_c, w): exact at
    d = 0, where every input and integral is the point's own (each added term an exact zero).
    Returns E (leaves (L,)), dE (leaves (5, L)) and d2E (leaves (5, L, 5)).
    """
    X = x.reshape(-1, 3)
    lam_per_beta = lam / beta
    I0, I1, I2 = _integral_jet(problem, num, w, X[:, 0])

    def shifted(d):
        y = jnp.stack([d[0], d[4]])
        taylor = jax.tree_util.tree_map(lambda i0, i1, i2: i0 + i1 @ y + 0.5 * (i2 @ y) @ y, I0, I1, I2)
        return taylor.energies(beta + d[3], lam + lam_per_beta * d[3], X[:, 1] + d[1], X[:, 2] + d[2])

    def first(d):
        E, dE = jax.vmap(lambda t: jax.jvp(shifted, (d,), (t,)), out_axes=(None, 0))(jnp.eye(5, dtype=x.dtype))
        return dE, (E, dE)

    d2E, (E, dE) = jax.jacfwd(first, has_aux=True)(jnp.zeros(5, dtype=x.dtype))
    return E, dE, d2E


def _diagnostics_body(numerics, beta, w, lam, data, u_best, base: Problem) -> dict:
    def one(num, b, ww, l, d, u):
        problem = base.with_data(d)
        # Derivatives in the natural parameters x, not through the unit box: at a bound
        # the box's clip has derivative 1/2 (a tie), which would halve every bound cost.
        x = problem.box.from_unit(u)
        n = x.shape[0]
        leptons = n // 3
        E, dE, d2E = _energy_jet(problem, num, b, ww, l, x)
        # slot[l, k]: where lepton l's k-th variable sits in z = (parameters, beta, w).
        slot = np.concatenate([np.arange(n).reshape(leptons, 3), np.tile([[n, n + 1]], (leptons, 1))], 1)
        onehot = np.eye(n + 2)[slot]  # (L, 5, n + 2)
        leaves = jax.tree_util.tree_leaves(E)
        E_z = jnp.concatenate([jnp.einsum("kl,lkz->lz", d, onehot) for d in jax.tree_util.tree_leaves(dE)])
        v = jnp.concatenate([x, jnp.stack([b, ww])] + leaves)  # (parameters, beta, w, energies)

        def unpack(v):
            X = v[:n].reshape(-1, 3)
            energies = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(E),
                                                    list(v[n + 2:].reshape(len(leaves), leptons)))
            return problem.likelihood.state(X[:, 0], X[:, 1], X[:, 2], v[n + 1], energies)

        def residuals(v):
            return problem.likelihood.residuals(unpack(v))

        def gradient_twice(v):
            g = jax.grad(lambda v: jnp.sum(residuals(v) ** 2))(v)
            return g, g

        # The likelihood holds no quadrature, so its full Hessian in (z, energies)
        # is cheap; the chain rule through E(z) then gives chi^2's Hessian in z.
        hess_v, grad_v = jax.jacfwd(gradient_twice, has_aux=True)(v)
        v_z = jnp.concatenate([jnp.eye(n + 2, dtype=x.dtype), E_z])  # dv/dz
        # chi^2's gradient in each energy times that energy's 5 x 5 curvature, added at its lepton's slots
        # (beta and w shared by all): a scatter of L small blocks, not a product with one-hot matrices.
        g_E = grad_v[n + 2:].reshape(len(leaves), leptons)
        curvature = sum(g[None, :, None] * d for g, d in zip(g_E, jax.tree_util.tree_leaves(d2E), strict=True))
        hess_eff = (v_z.T @ hess_v @ v_z).at[slot[:, :, None], slot[:, None, :]].add(jnp.swapaxes(curvature, 0, 1))
        grad_eff = v_z.T @ grad_v
        # Shared followers take their leader's value: a leader's derivative is its whole group's.
        q_host = np.eye(n + 2)
        q_host[:n, :n] = 0.0
        q = jnp.asarray(q_host).at[jnp.arange(n), problem.box.leader].set(1.0)
        hess_aug = q.T @ hess_eff @ q
        hess_aug = 0.5 * (hess_aug + hess_aug.T)  # symmetric to the last bit, as downstream solvers assume
        grad_aug = q.T @ grad_eff
        jac_unit = (jax.jacfwd(residuals)(v) @ v_z)[:, :n] @ jax.jacfwd(problem.box.from_unit)(u)
        state = unpack(v)
        pulls = problem.likelihood.residuals(state)
        at_lo = u <= BOUND_TOL
        at_hi = u >= 1.0 - BOUND_TOL
        fixed = problem.box.fixed
        terms = problem.likelihood.terms(state)
        return dict(
            S=state.S, E_total=state.energies.total, E_circ=state.energies.E_circ,
            E_stab=state.energies.E_stab, E_grad=state.energies.E_grad,
            masses=state.S * state.energies.total, prediction=problem.likelihood.predictions(state),
            pulls=pulls, at_lower=at_lo & ~fixed,
            at_upper=at_hi & ~fixed, hessian_aug=hess_aug, gradient_aug=grad_aug, jacobian_unit=jac_unit,
            free=~(at_lo | at_hi | fixed), **terms,
        )

    return eqx.filter_vmap(one, in_axes=(numerics.point_axes(), 0, 0, 0, 0, 0))(numerics, beta, w, lam, data,
                                                                                 u_best)


def prepare_diagnostics(problem: Problem, numerics: AbstractNumerics, beta, w, lam, mesh=None) -> None:
    """Start readying the diagnostics kernel for these points while their fits run."""
    u = np.zeros((len(beta), problem.box.lower.shape[0]))
    run_padded("diagnostics", _diagnostics_body, mesh, numerics, (beta, w, lam, point_data(problem, len(beta)), u),
               (problem,), only_prepare=True)


def point_diagnostics(problem: Problem, numerics: AbstractNumerics, beta, w, lam, u_best, mesh=None,
                      data=None) -> dict:
    """S*, energies, masses, pulls and the Hessian in (parameters, beta) per point (host arrays).

    The Hessian is taken with lambda following beta at fixed lambda/beta, as the
    eta calibration does; `hessian_spectra` turns it into eigenvalues and
    beta's profile curvature on the host.  `numerics` is per point (P entries).
    """
    data = point_data(problem, len(beta), data)
    return run_padded("diagnostics", _diagnostics_body, mesh, numerics, (beta, w, lam, data, u_best), (problem,))


def identifiability_counts(jac_unit: np.ndarray, free: np.ndarray, rtol: float = 1e-8) -> dict:
    """Rank of the residual Jacobian in the free parameters, and its null space (unit-box coordinates).

    Unit-box coordinates measure every parameter in its own range, so the
    rank tolerance and the null-space weights compare like with like.
    """
    points, _, n = jac_unit.shape
    rank = np.zeros(points, int)
    # null[p, k] is the k-th null direction (NaN rows where there are fewer).
    null = np.full((points, n, n), np.nan)
    patterns, which = np.unique(np.asarray(free, bool), axis=0, return_inverse=True)
    for k, pattern in enumerate(patterns):
        rows = np.flatnonzero(which.ravel() == k)
        f = np.flatnonzero(pattern)
        if f.size == 0:
            continue
        J = jac_unit[np.ix_(rows, np.arange(jac_unit.shape[1]), f)]
        J = np.where(np.isfinite(J), J, 0.0)
        _, s, vt = np.linalg.svd(J, full_matrices=True)
        largest = s[:, :1] if s.shape[1] else np.zeros((rows.size, 1))
        r = np.sum(s > rtol * largest, axis=1) * (largest[:, 0] > 0)
        rank[rows] = r
        # Rows of one pattern share a handful of ranks: assign each rank's null spaces at once.
        for rr in np.unique(r):
            same = r == rr
            block = np.zeros((int(same.sum()), f.size - rr, n))
            block[:, :, f] = vt[same, rr:, :]
            null[rows[same], : f.size - rr] = block
    return {"jacobian_rank": rank, "null_space": null}


def best_starts(chi2_starts: np.ndarray, *preferred: np.ndarray) -> np.ndarray:
    """Per point, the first start whose chi^2 is the lowest to within SAME_OPTIMUM_RTOL.

    On a flat valley the starts that reach the optimum end at different
    parameters with chi^2 equal to rounding; which of them is lowest is then
    decided by the last bits (compiler, device, machine).  Reporting the first
    of them keeps the reported parameters from jumping between machines and
    versions.  `preferred` masks (starts, most wanted first) choose among
    those equals: the first mask that any of them meets decides (the fit passes
    "stopped on its own criterion at a stationary point", then "stopped on its
    own criterion", so the reported start is one that carries the certificate
    when one does).  Non-finite chi^2 never wins.
    """
    finite = np.where(np.isfinite(chi2_starts), chi2_starts, np.inf)
    lowest = np.min(finite, axis=1, keepdims=True)
    tied = finite <= lowest + SAME_OPTIMUM_RTOL * np.maximum(np.abs(lowest), 1.0)
    chosen, decided = tied.copy(), np.zeros(len(tied), bool)
    for mask in preferred:
        narrowed = tied & np.asarray(mask, bool)
        use = ~decided & np.any(narrowed, axis=1)
        chosen[use] = narrowed[use]
        decided |= use
    return np.argmax(chosen, axis=1)


def summarize_points(problem: Problem, numerics, beta, w, lam, solution: dict, mesh=None, data=None,
                     polish: bool = True) -> dict:
    """Host-side arrays of results and convergence evidence for every point (polish=False: at the LM's own
    point, one diagnostics pass, where the derived numbers need not agree across chunkings to rounding)."""
    chi2_s = np.asarray(solution["chi2_starts"])
    finite = np.where(np.isfinite(chi2_s), chi2_s, np.inf)
    pg_s = np.asarray(solution["pgrad_starts"])
    done_s = np.asarray(solution["done_starts"], bool)
    # chi^2 >= 0, so a fit within EXACT_FIT_CHI2 of zero is within that of the global minimum,
    # whatever rounding does to its gradient (stiff directions make |grad| ~ 1e-3 at chi^2 ~ 1e-22).
    # Which start is reported prefers the LM's own stationarity evidence; the certificate itself is the
    # EDM at the reported point (below).
    stationary_s = (pg_s <= PROJECTED_GRADIENT_CERTIFY) | (chi2_s <= EXACT_FIT_CHI2)
    best = best_starts(chi2_s, done_s & stationary_s, done_s)
    rows = np.arange(chi2_s.shape[0])
    u_best = np.asarray(solution["u_starts"])[rows, best]
    span = np.asarray(problem.box.span)
    diag = point_diagnostics(problem, numerics, beta, w, lam, u_best, mesh, data)
    # One exact Newton step on the free parameters, then the diagnostics again where it lowers chi^2:
    # LM stops anywhere inside its tolerance (projected gradients 1e-11 .. 1e-5 of chi^2 for the same
    # point under another --chunk), and every derived number -- the profile slopes, the Schur
    # complements (beta's curvature cancels 11 digits of H_beta,beta here) -- moves with that residual
    # gradient to first order.  At the polished point they agree to rounding across chunkings.
    for _ in range(POLISH_STEPS if polish else 0):
        u_polished = newton_polish(diag["hessian_aug"], diag["gradient_aug"], diag["free"], u_best, span)
        if not np.any(u_polished != u_best):
            break
        again = point_diagnostics(problem, numerics, beta, w, lam, u_polished, mesh, data)
        chi2_before = np.sum(np.asarray(diag["pulls"]) ** 2, axis=1)
        chi2_after = np.sum(np.asarray(again["pulls"]) ** 2, axis=1)
        better = np.isfinite(chi2_after) & (chi2_after <= chi2_before)
        for key, value in again.items():
            diag[key] = np.where(better.reshape((-1,) + (1,) * (np.ndim(value) - 1)), value, diag[key])
        u_best = np.where(better[:, None], u_polished, u_best)
    free = diag.pop("free")
    diag["hessian"] = diag.pop("hessian_aug")
    gradient = diag.pop("gradient_aug")
    diag.update(hessian_spectra(diag["hessian"], free, span, gradient))
    diag["edm"], diag["flat_slope"] = newton_decrement(diag["hessian"], gradient, diag["at_lower"], diag["at_upper"],
                                                       np.asarray(problem.box.fixed), span)
    n = gradient.shape[1] - 2
    # Envelope theorem: at a box-constrained optimum, chi^2_min moves with an active
    # bound at the rate of chi^2's partial derivative in that parameter (the KKT
    # multiplier), and with beta or w at the rate of its partial derivative (corrected to first order
    # for the gradient left where the fit stopped: see hessian_spectra).
    diag["bound_cost_lower"] = np.where(diag["at_lower"], gradient[:, :n], np.nan)
    diag["bound_cost_upper"] = np.where(diag["at_upper"], gradient[:, :n], np.nan)
    slopes = diag.pop("profile_slopes")
    diag["dchi2_dbeta"], diag["dchi2_dw"] = slopes[:, 0], slopes[:, 1]
    counts = identifiability_counts(diag.pop("jacobian_unit"), free)
    diag["jacobian_rank"] = counts["jacobian_rank"]
    diag["free_count"] = free.sum(axis=1)
    diag["null_space"] = counts["null_space"]
    # The polished point's chi^2 where it is lower than the run's own (by rounding-sized amounts).
    chi2 = np.minimum(finite[rows, best], np.where(np.isfinite(diag["pulls"]).all(axis=1),
                                                   np.sum(diag["pulls"] ** 2, axis=1), np.inf))
    within = np.sum(finite - chi2[:, None] <= AGREEMENT_DCHI2, axis=1)
    spread = np.max(np.where(np.isfinite(finite), finite, -np.inf), axis=1) - chi2
    pg, done = pg_s[rows, best], done_s[rows, best]
    # The reported point is the polished one: its own projected gradient certifies it too.  Near chi^2 ~ 1
    # the LM's last gradient sits at its rounding floor (5e-5..2e-4 of an absolute unit for toys of the seed
    # fit), so whether it passed PROJECTED_GRADIENT_CERTIFY was a coin toss between equal fits.
    g_unit = gradient[:, :n] * span[None, :] / np.maximum(chi2, CHI2_SCALE_FLOOR)[:, None]
    pg_reported = projected_gradient_norm(u_best, g_unit, np.asarray(problem.box.fixed))
    pg = np.minimum(pg, np.where(np.isfinite(pg_reported), pg_reported, np.inf))
    starts = chi2_s.shape[1]
    # A non-finite chi^2, S* or energy is never a certified result, whatever the optimiser reported.
    finite_result = np.isfinite(chi2) & np.isfinite(np.asarray(diag["S"])) & np.all(
        np.isfinite(np.asarray(diag["E_total"])), axis=1)
    # The gradient along flat directions (diag["flat_slope"]) is recorded, not a criterion: there it is
    # the autodiff gradient's own rounding (7e-7 per unit box on a seed toy whose central differences
    # along the same directions give <= 1e-9), and the LM, which follows any gradient, does not stop on a slope.
    stationary = (chi2 <= EXACT_FIT_CHI2) | (diag["edm"] <= EDM_CERTIFY * np.maximum(chi2, 1.0))
    # An exact fit -- chi^2 below its data's rounding floor -- cannot be undercut by any start (chi^2 >= 0), so
    # it needs no second start's agreement (where a warm start ends exact, refits.py runs no other start).
    exact = chi2 < problem.likelihood.chi2_rounding_floor(point_data(problem, len(chi2), data))
    agree = (within >= 2) | (starts == 1) | exact
    failed = {"non-finite result": ~finite_result, "optimiser not stopped": ~done,
              "not stationary (EDM)": ~stationary, "starts disagree": ~agree}
    reason = np.select(list(failed.values()), [UNCERTIFIED_REASONS.index(why) for why in failed], 0)
    converged = reason == 0
    params = problem.box.from_unit(u_best)
    return dict(
        chi2=chi2, params=params, u=np.asarray(u_best), best_start=best, chi2_starts=chi2_s,
        starts_within=within, chi2_spread=spread, projected_gradient=pg, steps=np.asarray(solution["steps_starts"]),
        optimizer_done=done, converged=converged, uncertified_reason=reason, finite_result=finite_result,
        de_chi2=np.asarray(solution["de_chi2"]),
        de_generations=np.asarray(solution["de_generations"]), de_converged=np.asarray(solution["de_converged"]),
        **diag,
    )
