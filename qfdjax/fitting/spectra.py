"""Hessian spectra, flat directions and profile curvatures of finished fits (host NumPy).

Why a module: the optima here have exactly flat directions (the electron's three
parameters against one mass) next to stiff ones (eigenvalues ~1e15), so every
derived number depends on cutting the flat ones the same way every time.  The
cut is made in unit-box coordinates (each parameter in its own range, where a
relative threshold compares like with like), flat eigenvalues are reported as 0
(their values are rounding), and the Newton polish that makes the derived
numbers independent of where the optimiser stopped uses the same cut.
"""

from __future__ import annotations

import numpy as np

# A Hessian eigenvalue at or below this fraction of the largest (unit-box coordinates for the
# pseudo-inverse) is a flat direction: at these optima the flat ones sit at 1e-17..1e-14 of the
# largest and move with rounding, the smallest real ones at >= 1e-8.  Flat eigenvalues are reported
# as exactly 0, so the spectrum does not print rounding noise as if it were curvature.
FLAT_RTOL = 1e-10
# Beta's profile curvature is H_bb minus its Schur term, two numbers of up to ~3e11 that cancel
# to ~1e2 on the seed's grid: where the optimiser stopped inside its flat directions moves it by up
# to 9e-11 of the larger (two chunkings of the 16 x 10 grid, after the polish), so this fraction of
# it is the curvature's stated uncertainty; a curvature inside it is zero (beta not constrained).
CANCEL_RTOL = 3e-10


def _flat_cut(eigenvalues: np.ndarray) -> np.ndarray:
    """Eigenvalues at or below FLAT_RTOL of the largest (per row) are flat: rounding, not curvature."""
    scale = np.max(np.abs(eigenvalues), axis=-1, keepdims=True)
    return np.abs(eigenvalues) <= FLAT_RTOL * scale


def _unit_pinv(block: np.ndarray) -> np.ndarray:
    """Pseudo-inverse of symmetric blocks (p, k, k) with flat directions (see `_flat_cut`) dropped."""
    eigval, eigvec = np.linalg.eigh(block)
    keep = ~_flat_cut(eigval)
    inv = np.where(keep, 1.0 / np.where(keep, eigval, 1.0), 0.0)
    return np.einsum("pik,pk,pjk->pij", eigvec, inv, eigvec)


def _free_patterns(free: np.ndarray, H: np.ndarray, g: np.ndarray):
    """(rows, free indices) for each distinct free-parameter pattern among points with finite H and g:
    one batched pseudo-inverse per pattern instead of one per point."""
    ok = np.all(np.isfinite(H), axis=(1, 2)) & np.all(np.isfinite(g), axis=1)
    patterns, which = np.unique(np.asarray(free, bool) & ok[:, None], axis=0, return_inverse=True)
    for k, pattern in enumerate(patterns):
        f = np.flatnonzero(pattern)
        if f.size:
            yield np.flatnonzero(which.ravel() == k), f


def _unit_box(hess_aug: np.ndarray, gradient_aug: np.ndarray, span: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The parameters' block of the Hessian and gradient in (parameters, beta, w), in unit-box coordinates."""
    n = span.shape[0]
    H = np.asarray(hess_aug, float)[:, :n, :n] * span[None, :, None] * span[None, None, :]
    g = np.asarray(gradient_aug, float)[:, :n] * span[None, :]
    return H, g


def newton_polish(hess_aug: np.ndarray, gradient_aug: np.ndarray, free: np.ndarray, u: np.ndarray,
                  span: np.ndarray) -> np.ndarray:
    """u after one Newton step in the free parameters (unit-box coordinates, flat directions left alone,
    clipped to the box).  Host NumPy; the caller keeps the step only where chi^2 does not rise."""
    u = np.array(u, dtype=np.float64)
    H, g = _unit_box(hess_aug, gradient_aug, span)
    for rows, f in _free_patterns(free, H, g):
        step = -np.einsum("pij,pj->pi", _unit_pinv(H[np.ix_(rows, f, f)]), g[np.ix_(rows, f)])
        u[np.ix_(rows, f)] = np.clip(u[np.ix_(rows, f)] + step, 0.0, 1.0)
    return u


def hessian_spectra(hess_aug: np.ndarray, free: np.ndarray, span: np.ndarray | None = None,
                    gradient_aug: np.ndarray | None = None) -> dict:
    """Eigenvalues and profile curvatures from Hessians in (parameters, beta, w), on the host.

    Per point: eigenvalues of the free-parameter block (flat directions are
    degeneracies) and of the block with beta added, NaN-padded to fixed length;
    the Schur complements H_gg - H_gF H_FF^+ H_Fg over the globals g = (beta, w),
    the Hessian of chi^2_min(beta, w) with the free parameters re-optimised
    (so sigma_beta = sqrt(2 / curvature) along beta).  With `gradient_aug`, also the
    profile slopes d chi^2_min / d(beta, w), "profile_slopes" (p, 2): the envelope theorem's
    partial derivatives corrected to first order for the gradient left in the free
    parameters, g_g - H_gF H_FF^+ g_F, with the same pseudo-inverse.  Why the correction:
    where the fit stopped inside its tolerance, the partial derivative moves with the
    residual gradient through the mixed second derivatives (at chi^2 ~ 1.6e7 a 4e-9 shift of
    the parameters moved dchi^2/dbeta by 5 of 1.2e5 between two chunkings); the corrected
    value is the slope at the nearby exact optimum, whatever the stopping point.  Done in NumPy: XLA's
    batched CPU eigensolvers hung here on some inputs (jax 0.10.2), NumPy's
    LAPACK does not, and an 11 x 11 eigensolve per point is cheap anyway.
    """
    H = np.where(np.isfinite(hess_aug), hess_aug, 0.0)
    points, size = H.shape[0], H.shape[1]
    n = size - 2
    # Flat directions are cut in unit-box coordinates (each parameter in its own range), where the
    # threshold compares like with like; the Schur complement does not depend on that scaling otherwise.
    scale = np.ones(size) if span is None else np.concatenate([np.where(span > 0, span, 1.0), [1.0, 1.0]])
    H_unit = H * scale[None, :, None] * scale[None, None, :]
    glob = [n, n + 1]
    if gradient_aug is not None:
        g_unit = np.asarray(gradient_aug) * scale[None, :]
        slopes = g_unit[:, glob].copy()
        # A point whose Hessian or gradient is not finite keeps its partial derivatives as they are.
        correctable = np.all(np.isfinite(hess_aug), axis=(1, 2)) & np.all(np.isfinite(g_unit), axis=1)
    eig = np.full((points, n), np.nan)
    eig_aug = np.full((points, n + 1), np.nan)
    profile = np.full((points, 2, 2), np.nan)
    cancelled = np.full((points, 2, 2), np.nan)
    # Points share a handful of free/active patterns: one batched solve per pattern.
    patterns, which = np.unique(np.asarray(free, bool), axis=0, return_inverse=True)
    for k, pattern in enumerate(patterns):
        rows = np.flatnonzero(which.ravel() == k)
        f = np.flatnonzero(pattern)
        fa = np.append(f, n)
        block = H[np.ix_(rows, f, f)]
        if f.size:
            values = np.linalg.eigvalsh(block)
            eig[rows, : f.size] = np.where(_flat_cut(values), 0.0, values)
        values = np.linalg.eigvalsh(H[np.ix_(rows, fa, fa)])
        eig_aug[rows, : fa.size] = np.where(_flat_cut(values), 0.0, values)
        Hgg = H[np.ix_(rows, glob, glob)]
        if f.size:
            coupling = H_unit[np.ix_(rows, f, glob)]
            inverse = _unit_pinv(H_unit[np.ix_(rows, f, f)])
            schur = np.einsum("pia,pij,pjb->pab", coupling, inverse, coupling)
            profile[rows] = Hgg - schur
            if gradient_aug is not None:
                fix = rows[correctable[rows]]
                slopes[fix] -= np.einsum("pia,pij,pj->pa", coupling[correctable[rows]], inverse[correctable[rows]],
                                         g_unit[np.ix_(fix, f)])
            cancelled[rows] = np.maximum(np.abs(Hgg), np.abs(schur))
        else:
            profile[rows] = Hgg
            cancelled[rows] = np.abs(Hgg)
    out = {"hessian_eigenvalues": eig, "hessian_eigenvalues_with_beta": eig_aug,
           "beta_curvature": profile[:, 0, 0], "profile_hessian": profile,
           "beta_curvature_uncertainty": CANCEL_RTOL * cancelled[:, 0, 0],
           "hessian_finite": np.all(np.isfinite(hess_aug), axis=(1, 2))}
    if gradient_aug is not None:
        out["profile_slopes"] = slopes
    return out


def newton_decrement(hess_aug: np.ndarray, gradient_aug: np.ndarray, at_lower: np.ndarray, at_upper: np.ndarray,
                     fixed: np.ndarray, span: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(edm, flat_slope) per point: the chi^2 a Newton step would still gain, and the gradient along flat directions.

    edm = 1/2 g_A^T |H_AA|^+ g_A over the parameters A that can move: those off their bounds,
    and those on a bound whose gradient points into the box (the KKT condition fails there).
    Flat directions are cut as everywhere (`_flat_cut`), and |H| (eigenvalues' magnitudes) keeps a
    saddle's negative curvature from cancelling a real gain.  It is Minuit's EDM for a bounded
    least-squares problem, in chi^2 units, so it compares with chi^2 itself at any scale -- unlike
    the projected gradient, whose rounding floor near chi^2 ~ 1 sits at its certification threshold.
    flat_slope = |P_flat g_A| in unit-box coordinates: along a flat direction the quadratic model
    promises nothing; recorded as evidence, not a criterion (there it is mostly the autodiff
    gradient's rounding).  NaN where H or g is not finite.
    """
    H, g = _unit_box(hess_aug, gradient_aug, span)
    movable = ~np.asarray(fixed, bool)[None, :] & (
        ~(np.asarray(at_lower, bool) | np.asarray(at_upper, bool))
        | (np.asarray(at_lower, bool) & (g < 0)) | (np.asarray(at_upper, bool) & (g > 0)))
    edm = np.zeros(H.shape[0])
    flat_slope = np.zeros(H.shape[0])
    ok = np.all(np.isfinite(H), axis=(1, 2)) & np.all(np.isfinite(g), axis=1)
    edm[~ok] = np.nan
    flat_slope[~ok] = np.nan
    for rows, f in _free_patterns(movable, H, g):
        eigval, eigvec = np.linalg.eigh(H[np.ix_(rows, f, f)])
        along = np.einsum("pik,pi->pk", eigvec, g[np.ix_(rows, f)])
        flat = _flat_cut(eigval)
        magnitude = np.where(flat, 1.0, np.abs(eigval))
        edm[rows] = 0.5 * np.sum(np.where(flat, 0.0, along ** 2 / magnitude), axis=1)
        flat_slope[rows] = np.sqrt(np.sum(np.where(flat, along ** 2, 0.0), axis=1))
    return edm, flat_slope
