"""The chi^2 surface on the (beta, w) grid: its minimum refined between nodes, 1-D profiles with their
Delta chi^2 = 1 and 4 ends, and the 2-D Delta chi^2 regions.

Plain arrays in and out (no JAX), shared by the scan's analysis, `qfdjax report` and the sensitivity study.
"""

from __future__ import annotations

import numpy as np

from ..fitting.levels import level_brackets

# 2-D Delta chi^2 levels for 68.3 / 95.4 / 99.73 % with two parameters.
CONTOUR_LEVELS = (2.30, 6.18, 11.83)


def _parabola_vertex(x, y):
    """Vertex of the parabola through three points, or None if not a minimum."""
    c = np.polyfit(x, y, 2)
    if c[0] <= 0:
        return None
    return -c[1] / (2 * c[0]), np.polyval(c, -c[1] / (2 * c[0]))


def refine_minimum(x, y, chi2, log_y: bool):
    """Grid minimum refined by a local quadratic fit (per axis where the minimum is interior)."""
    i, j = np.unravel_index(np.nanargmin(chi2), chi2.shape)
    yy = np.log(y) if log_y else np.asarray(y)
    best = {"beta": float(x[i]), "w": float(y[j]), "chi2": float(chi2[i, j]), "index": [int(i), int(j)],
            "refined": False}
    nx, ny = chi2.shape
    if 0 < i < nx - 1 and 0 < j < ny - 1:
        X, Y = np.meshgrid(x[i - 1:i + 2], yy[j - 1:j + 2], indexing="ij")
        Z = chi2[i - 1:i + 2, j - 1:j + 2]
        design = np.stack([np.ones(9), X.ravel(), Y.ravel(), X.ravel() ** 2, X.ravel() * Y.ravel(),
                           Y.ravel() ** 2], -1)
        c = np.linalg.lstsq(design, Z.ravel(), rcond=None)[0]
        H = np.array([[2 * c[3], c[4]], [c[4], 2 * c[5]]])
        if np.all(np.linalg.eigvalsh(H) > 0):
            bx, by = np.linalg.solve(H, -c[1:3])
            if x[i - 1] <= bx <= x[i + 1] and yy[j - 1] <= by <= yy[j + 1]:
                value = c[0] + c[1] * bx + c[2] * by + c[3] * bx**2 + c[4] * bx * by + c[5] * by**2
                best.update(beta=float(bx), w=float(np.exp(by) if log_y else by), chi2=float(value),
                            refined=True)
                return best
    # Per axis where only one is interior: each parabola's drop below the node adds to the node's chi^2,
    # so the refined point is never paired with the node's own chi^2.
    drop = 0.0
    if 0 < i < nx - 1:
        v = _parabola_vertex(x[i - 1:i + 2], chi2[i - 1:i + 2, j])
        if v is not None:
            best.update(beta=float(v[0]), refined=True)
            drop += min(v[1] - chi2[i, j], 0.0)
    if 0 < j < ny - 1:
        v = _parabola_vertex(yy[j - 1:j + 2], chi2[i, j - 1:j + 2])
        if v is not None:
            best.update(w=float(np.exp(v[0]) if log_y else v[0]), refined=True)
            drop += min(v[1] - chi2[i, j], 0.0)
    best["chi2"] = float(chi2[i, j] + drop)
    return best


def profile_1d(axis, chi2_profile, level: float = 1.0, log_axis: bool = False, refined: dict | None = None,
               reference: float | None = None, refit_min_at: float | None = None):
    """Minimum and the Delta chi^2 = level and = 4 intervals of a 1-D profile.

    The ends come from `refined` (intervals.py: root finding on refitted
    profiles, stored in the scan record) where the scan found them, else from
    linear interpolation of the grid profile, and `interval_method` says which.
    `reference`: the refitted minimum's chi^2 (Delta chi^2 is measured from it, not from the best node),
    `refit_min_at`: where along this axis it lies.
    """
    axis = np.asarray(axis, float)
    values = np.asarray(chi2_profile, float)
    d = values - (np.nanmin(values) if reference is None else min(float(reference), np.nanmin(values)))
    k = int(np.nanargmin(d))
    coord = np.log(axis) if log_axis else axis
    back = (lambda v: float(np.exp(v))) if log_axis else float

    def ends(at):
        if refined and f"{at:g}" in refined:
            return [refined[f"{at:g}"].get(side) for side in ("lower", "upper")]
        found = {}
        for side, a, b in level_brackets(d, at):
            t = (at - d[a]) / (d[b] - d[a])
            found[side] = back(coord[a] + t * (coord[b] - coord[a]))
        return [found.get("lower"), found.get("upper")]

    lower, upper = ends(level)
    two_sigma = ends(4.0)
    vertex = None
    if refit_min_at is not None:
        vertex = float(refit_min_at)
    elif 0 < k < axis.size - 1:
        v = _parabola_vertex(coord[k - 1:k + 2], d[k - 1:k + 2])
        vertex = back(v[0]) if v is not None else None
    edge = None if axis.size == 1 else ("lower" if k == 0 else "upper" if k == axis.size - 1 else None)
    return {"min_at": float(axis[k]), "min_refined": vertex, "min_refined_method": (
                "refit" if refit_min_at is not None else "parabola" if vertex is not None else None),
            "delta_chi2": d.tolist(),
            "interval": [lower, upper], "interval_4": two_sigma,
            "interval_method": "refit" if refined else "linear interpolation of the grid profile",
            "closed": lower is not None and upper is not None, "edge": edge}


def contour_regions(beta, w, delta):
    out = {}
    nb, nw = delta.shape
    for level in CONTOUR_LEVELS:
        inside = delta <= level
        if not inside.any():
            continue
        ii, jj = np.nonzero(inside)
        touches = bool(ii.min() == 0 or ii.max() == nb - 1 or jj.min() == 0 or jj.max() == nw - 1)
        out[f"{level:g}"] = {
            "points": int(inside.sum()),
            "beta_range": [float(beta[ii.min()]), float(beta[ii.max()])],
            "w_range": [float(w[jj.min()]), float(w[jj.max()])],
            "closed_on_grid": not touches,
        }
    return out
