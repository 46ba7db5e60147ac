"""1-D profiles of one parameter and 2-D confidence contours of a pair, by refitting.

A profile point fixes the named parameter(s) at a trial value and refits every
other free parameter (S profiled as always); Delta chi^2 is measured from the
best fit.  The range is +-`span` HESSE errors around the best value (a tenth
of the bound range where HESSE has no error), cut by the bounds.  The contour
at a confidence level is the Delta chi^2 = q level line of the refitted 2-D
map, with q the chi^2 quantile for one or two parameters (1.00 and 2.30 at
68.3 %).  The grid is for the picture; the numbers are refined by more refits:
the 1-D interval by MINOS's search, the contour by root-finding along rays from
the best fit, so neither is limited by the grid's spacing.

Every refit is a lane: a parameter held at a value is a pinned entry of the
fit's box (an array input), so a whole grid, or every ray of a contour, is one
call of the compiled fit kernel -- no Python loop of fits, no new shapes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError, check_range
from ..io import save_figure
from .fit import FitConfig, fit_points
from .levels import level_brackets
from .params import ParameterSpace, parameter_label
from .roots import Crossings


def delta_chi2_for(cl: float, parameters: int) -> float:
    """The chi^2 quantile at confidence `cl` for 1 or 2 parameters (no SciPy needed)."""
    check_range("cl", cl, lower=0.0, upper=1.0, lower_open=True, upper_open=True)
    if parameters == 2:
        return -2.0 * math.log(1.0 - cl)
    lo, hi = 0.0, 40.0  # 1 parameter: q = z^2 with erf(z / sqrt 2) = cl
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if math.erf(mid / math.sqrt(2.0)) < cl else (lo, mid)
    return (0.5 * (lo + hi)) ** 2


def _axis(best: Any, name: str, bounds: dict, points: int, span: float) -> np.ndarray:
    values = dict(zip(best["param_names"], best["params"], strict=True))
    if name not in values:
        raise InputError(f"profile parameter {name!r} is unknown: parameters are {', '.join(values)}")
    lo, hi = bounds[name]
    if lo == hi:
        raise InputError(f"profile parameter {name} is fixed: nothing to profile")
    sigma = (best.get("errors") or {}).get(name) or 0.1 * (hi - lo)
    x0 = values[name]
    return np.linspace(max(lo, x0 - span * sigma), min(hi, x0 + span * sigma), points)


def parameter_profile(best: Any, names, space: ParameterSpace, *, cl: float = math.erf(1 / math.sqrt(2)), points: int = 21,
                      span: float = 3.0, **fit_kwargs) -> dict:
    """Refitted Delta chi^2 along one parameter, or over a pair with its contour at `cl`."""
    names = tuple(names)
    if len(names) not in (1, 2) or len(set(names)) != len(names):
        raise InputError(f"profile = {','.join(names)} is invalid: name one parameter, or two different ones")
    check_range("profile points", points, lower=3, upper=201, integer=True)
    check_range("profile span", span, lower=0.0, lower_open=True)
    bounds = space.as_dict()
    axes = [_axis(best, n, bounds, int(points), span) for n in names]
    level = delta_chi2_for(cl, len(names))

    grid = np.meshgrid(*axes, indexing="ij")
    chi2 = pinned_chi2(best, space, {n: g.ravel() for n, g in zip(names, grid, strict=True)},
                       **fit_kwargs).reshape(grid[0].shape)
    delta = chi2 - best["chi2"]
    record = {"parameters": list(names), "cl": cl, "level": level, "beta": best["beta"], "w": best["w"],
              "best": {n: float(dict(zip(best["param_names"], best["params"], strict=True))[n]) for n in names},
              "axes": {n: a.tolist() for n, a in zip(names, axes, strict=True)}, "delta_chi2": delta.tolist(),
              "refits": int(delta.size)}
    if len(names) == 1:
        record["interval_grid"] = _crossings(axes[0], delta, level, record["best"][names[0]])
        record["interval"], record["interval_method"] = _refined_interval(best, space, names[0], level,
                                                                          record["interval_grid"], fit_kwargs)
    else:
        contour, open_rays, refits = _contour_by_rays(best, space, names, level, axes, fit_kwargs)
        record["contour"] = [contour.tolist()] if len(contour) else []
        record["contour_closed"] = bool(len(contour)) and not open_rays
        record["contour_open_rays"] = open_rays
        record["contour_method"] = "refitted along rays from the best fit (Delta chi2 = level to 1e-6 relative)"
        record["refits"] += refits
    return record


def _refined_interval(best, space, name, level, grid_ends, fit_kwargs):
    """The crossings of `level` refined by MINOS's search (pinned refits), not read off the grid."""
    from .minos import minos

    try:
        found = minos(best, [name], space, level=level, rtol=1e-7, max_refits=60, **fit_kwargs)[name]
    except InputError:
        return grid_ends, "grid (linear between refits)"
    x0 = float(dict(zip(best["param_names"], best["params"], strict=True))[name])
    ends = [None if found[s] is None or found[f"{s}_cut_by_bound"] else x0 + found[s] for s in ("lower", "upper")]
    return ends, "refitted (MINOS search)"


RAYS = 96
# Steps outwards (doubling from 1.5 sqrt(level) HESSE errors) before a ray that is still inside counts as
# open, and Illinois steps once it is bracketed.
RAY_OUTWARD = 9
RAY_ROUNDS = 60


def _contour_by_rays(best, space, names, level, axes, fit_kwargs, rays: int = RAYS):
    """Points where Delta chi^2 = level along rays from the best fit, every ray a lane of each refit call.

    The rays are spread evenly in units of each parameter's HESSE error (or its axis span), so an
    elliptical contour gets evenly spaced points.  A ray that reaches a bound first is open.
    """
    values = dict(zip(best["param_names"], best["params"], strict=True))
    x0 = np.array([values[n] for n in names], dtype=np.float64)
    bounds = np.array([space.as_dict()[n] for n in names], dtype=np.float64)
    errors = best.get("errors") or {}
    scale = np.array([errors.get(n) or (a[-1] - a[0]) / 6 for n, a in zip(names, axes, strict=True)])
    theta = np.linspace(0.0, 2 * np.pi, rays, endpoint=False)
    direction = np.stack([np.cos(theta), np.sin(theta)], axis=1) * scale
    with np.errstate(divide="ignore"):
        reach = np.where(direction > 0, (bounds[:, 1] - x0) / direction,
                         np.where(direction < 0, (bounds[:, 0] - x0) / direction, np.inf)).min(axis=1)

    def excess(r):
        points = x0 + r[:, None] * direction
        return pinned_chi2(best, space, {n: points[:, k] for k, n in enumerate(names)}, **fit_kwargs) \
            - best["chi2"] - level

    close = 1e-6 * level
    search = Crossings.outward(0.0, -level, np.ones(rays), reach, np.sqrt(level) * 1.5)
    while search.open.size:  # every open ray's next trial, expanding or inside its bracket, in one refit call
        which = search.open
        r = search.trials(which)
        search.record(which, r, excess(r), ftol=close, max_evaluations=RAY_OUTWARD + RAY_ROUNDS,
                      max_outward=RAY_OUTWARD)
    refits = int(search.evaluations.sum())
    r_end = np.where(search.hit, search.x, search.interpolated())
    # A ray whose refits were not certified has no point: the contour is drawn through the others.
    r_end = np.where(search.failed, np.nan, r_end)
    # Open: stopped at its bound below the level, or failed -- each ray counted once.
    open_rays = int(np.sum(search.failed | ~np.isfinite(search.b)))
    points = (x0 + r_end[:, None] * direction)[np.isfinite(r_end)]
    return (np.vstack([points, points[:1]]) if len(points) else points), open_rays, refits


def pinned_chi2(best: Any, space: ParameterSpace, pinned: dict, *, config: FitConfig = FitConfig(),
                observables=("mass",), likelihood=None, eta=None, **fit_kwargs) -> np.ndarray:
    """chi^2_min with the named parameters held at each of K values (every other free one refitted),
    as K lanes of one fit call from the same starts plus the best fit itself.

    pinned {name: (K,) values}.  A refit that is not certified converged is NaN: a profile point
    without a guarantee is not drawn or used.
    """
    from .observables import build_likelihood

    del eta  # the best fit's own lam is used: the refits are at its (beta, w, lam)
    likelihood = likelihood if likelihood is not None else build_likelihood(space.leptons, tuple(observables))
    count = len(next(iter(pinned.values())))
    start = np.repeat(np.asarray(best["params"], dtype=np.float64)[None], count, axis=0)
    for name, values in pinned.items():
        start[:, space.names.index(name)] = values
    beta, w, lam = (np.full(count, float(best[k])) for k in ("beta", "w", "lam"))
    out = fit_points(beta, w, lam, space=space, config=config, point_ids=np.zeros(count, np.int64),
                     extra_starts=start, pinned=pinned, likelihood=likelihood, **fit_kwargs)
    return np.where(out["converged"], out["chi2"], np.nan)


def _crossings(axis, delta, level, x0):
    """Where the 1-D refitted profile crosses `level` on each side of the best value (linear between refits)."""
    found = {side: float(axis[a] + (level - delta[a]) * (axis[b] - axis[a]) / (delta[b] - delta[a]))
             for side, a, b in level_brackets(delta, level, start=int(np.argmin(np.abs(axis - x0))))}
    return [found.get("lower"), found.get("upper")]


def write_profile(record: dict, stem) -> list[str]:
    """stem.json, stem.csv (one row per refit, plus the contour's points for a pair) and stem.png."""
    from pathlib import Path

    from ..io import write_json, write_text

    # Parameter names hold dots (mu.U): the suffix is appended, never substituted.
    json_path, csv_path, png_path = (Path(f"{stem}{suffix}") for suffix in (".json", ".csv", ".png"))
    names = record["parameters"]
    write_json(json_path, record)
    axes = [np.asarray(record["axes"][n]) for n in names]
    grid = np.meshgrid(*axes, indexing="ij")
    delta = np.asarray(record["delta_chi2"])
    rows = [",".join(["kind", *names, "delta_chi2"])]
    rows += [",".join(["refit", *(f"{g.flat[i]:.17g}" for g in grid), f"{delta.flat[i]:.17g}"])
             for i in range(delta.size)]
    for n, line in enumerate(record.get("contour", [])):
        rows += [",".join([f"contour{n}", f"{x:.17g}", f"{y:.17g}", f"{record['level']:.17g}"]) for x, y in line]
    write_text(csv_path, "\n".join(rows) + "\n")
    _plot(record, png_path)
    return [str(json_path), str(csv_path), str(png_path)]


def _plot(record, path):
    # A bare Figure, not pyplot: writing a file never switches the caller's matplotlib backend.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5))
    draw_parameter_profile(fig.subplots(), record)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def draw_parameter_profile(ax, record: dict, decorate: bool = True):
    """Draw a `parameter_profile` record into `ax` (1-D curve with its crossings, or the 2-D map with
    its contour); returns `ax`.  With `decorate` (qfdjax's own files) it also sets the title, adds a
    colour bar beside the axes and puts the legend below them; without (a caller's Axes) it draws only
    inside `ax`, the legend included."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    names = record["parameters"]
    delta = np.asarray(record["delta_chi2"])
    label = f"Δχ² = {record['level']:.3g} ({100 * record['cl']:.1f} % CL, {len(names)} parameter{'s' * (len(names) - 1)})"
    if len(names) == 1:
        x = np.asarray(record["axes"][names[0]])
        ax.plot(x, delta, "o-", color="C0", ms=3, label="refitted profile")
        ax.axhline(record["level"], color="k", ls=":", lw=1.2, label=label)
        ends = [e for e in record["interval"] if e is not None]
        for n, end in enumerate(ends):
            ax.axvline(end, color="k", ls="--", lw=1, label="interval ends" if n == 0 else None)
        ax.set_xlabel(parameter_label(names[0]))
        ax.set_ylabel("Δχ²")
        ax.set_ylim(bottom=min(0.0, float(np.nanmin(delta))) - 0.05 * max(float(np.nanmax(delta)), 1.0))
    else:
        x, y = (np.asarray(record["axes"][n]) for n in names)
        mesh = ax.pcolormesh(x, y, delta.T, shading="nearest", cmap="Greys_r")
        if decorate:
            ax.figure.colorbar(mesh, ax=ax, label="Δχ²")
        for n, line in enumerate(record["contour"]):
            line = np.asarray(line)
            # Drawn in a colour that stands out on a grey map and in greyscale print (dashed).
            ax.plot(line[:, 0], line[:, 1], color="C1", ls="--", lw=2, label=label if n == 0 else None)
        ax.set_xlabel(parameter_label(names[0]))
        ax.set_ylabel(parameter_label(names[1]))
    best = [record["best"][n] for n in names]
    ax.plot(best[0], best[1] if len(names) == 2 else 0.0, "*", color="C3", mec="k", ms=12, label="best fit",
            clip_on=False, zorder=5)
    # Full values on the ticks: an offset label ("1e-5+1.5e-1") hides what is plotted.
    for axis in (ax.xaxis, ax.yaxis) if len(names) == 2 else (ax.xaxis,):
        axis.set_major_formatter(ScalarFormatter(useOffset=False))
        axis.set_major_locator(MaxNLocator(4))
    if not decorate:
        ax.legend(fontsize=8, loc="best")
        return ax
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
    title = f"profile at β = {record['beta']:.6g}, w = {record['w']:.6g}"
    if len(names) == 1:
        shown = " .. ".join(f"{e:.6g}" if e is not None else "open" for e in record["interval"])
        title += f"\n{parameter_label(names[0])} ∈ [{shown}] at {100 * record['cl']:.1f} % CL"
    ax.set_title(title, fontsize=10)
    return ax
