"""1-D profiles of one parameter and 2-D confidence contours of a pair, by refitting.

A profile point fixes the named parameter(s) at a trial value and refits every
other free parameter (S profiled as always); Delta chi^2 is measured from the
best fit.  The range is +-`span` HESSE errors around the best value (a tenth
of the bound range where HESSE has no error), cut by the bounds.  The contour
at a confidence level is the Delta chi^2 = q level line of the refitted 2-D
map, with q the chi^2 quantile for one or two parameters (1.00 and 2.30 at
68.3 %), traced by contourpy (matplotlib's contouring library).

Each grid value is one fit call on the host (~20 ms on a CPU core once
compiled): fixing a parameter changes the fit's box, which is one per
compiled call.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError, check_range
from ..io import save_figure
from .fit import FitConfig, fit_points
from .levels import level_brackets
from .params import ParameterSpace


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
        record["interval"] = _crossings(axes[0], delta, level, record["best"][names[0]])
    else:
        import contourpy

        lines = contourpy.contour_generator(axes[1], axes[0], delta).lines(level)
        # contourpy works in (x = second axis, y = first axis); stored as (first, second) pairs.
        record["contour"] = [np.asarray(line)[:, ::-1].tolist() for line in lines]
        record["contour_closed"] = bool(lines) and all(np.allclose(np.asarray(line)[0], np.asarray(line)[-1]) for line in lines)
    return record


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


SYMBOLS = {"R_c": "R_c", "U": "U", "A": "A"}
LEPTON_SYMBOLS = {"e": "e", "mu": "μ", "tau": "τ"}


def parameter_label(name: str) -> str:
    """mu.U -> $U_{μ}$: the symbol a paper prints, from qfdjax's parameter name."""
    lepton, _, param = name.partition(".")
    if not param or lepton not in LEPTON_SYMBOLS:
        return name
    base, _, sub = param.partition("_")
    index = LEPTON_SYMBOLS[lepton] if not sub else f"{sub},{LEPTON_SYMBOLS[lepton]}"
    return f"${base}_{{{index}}}$"


def draw_parameter_profile(ax, record: dict, colorbar: bool = True):
    """Draw a `parameter_profile` record into `ax` (1-D curve with its crossings, or the 2-D map with
    its contour); returns `ax`."""
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
        if colorbar:
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
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
    title = f"profile at β = {record['beta']:.6g}, w = {record['w']:.6g}"
    if len(names) == 1:
        shown = " .. ".join(f"{e:.6g}" if e is not None else "open" for e in record["interval"])
        title += f"\n{parameter_label(names[0])} ∈ [{shown}] at {100 * record['cl']:.1f} % CL"
    ax.set_title(title, fontsize=10)
    return ax
