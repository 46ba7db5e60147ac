"""Figures of a scan: Delta chi^2 map with contours, 1-D profiles, parameter maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
# A bare Figure, not pyplot: drawing to a file never switches (or needs) the caller's backend.
# Labels are plain Unicode, not mathtext (parsing TeX-like strings was a third of the plotting
# time of a small scan), except the few that need a subscript.

from ..fitting.params import parameter_label
from ..io import save_figure
from ..model.constants import GOLDEN_LOOP_BETA
from .surface import CONTOUR_LEVELS
from ..fitting.certificate import EXACT_CHI2, chi2_text
from .plot_axes import bare_subplots, centred_mesh, label_beta_w, log_w_axis, say_no_information
from .profile_plots import draw_profile, plot_profiles  # noqa: F401 -- plot_profiles is one of plot_scan's figures


def plot_chi2_map(record, path):
    """Delta chi^2 on a log colour scale (the grid minimum, Delta chi^2 = 0, marked by the star),
    with only the confidence contours that actually cross the grid named in the title."""
    beta, w = np.asarray(record["beta"]), np.asarray(record["w"])
    fig, ax = bare_subplots(figsize=(7.5, 5.6))
    if (beta.size == 1) != (w.size == 1):
        # One row (or column): a map would be one line of dots on an empty axis; this is a 1-D profile.
        along, fixed = ("beta", "w") if w.size == 1 else ("w", "beta")
        draw_profile(ax, record, along)
        ax.set_title(f"Δχ² along {'β' if along == 'beta' else 'w'} at {'w' if fixed == 'w' else 'β'} = "
                     f"{float(np.ravel(record[fixed])[0]):g} (a one-line scan) — Path {record['analysis']['verdict']['path']}\n"
                     + ax.get_title(), fontsize=9)
        fig.subplots_adjust(left=0.13, right=0.97, bottom=0.3, top=0.86)
        save_figure(fig, path, dpi=110)
        return
    draw_chi2_map(ax, record, decorate=True)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def draw_chi2_map(ax, record, decorate: bool = False):
    """The Delta chi^2 map of an analysed two-axis scan into `ax`; returns `ax`.  With `decorate` (qfdjax's
    own file) also a colour bar beside it and the legend below it; without, nothing outside `ax`."""
    from matplotlib.colors import LogNorm

    beta, w = np.asarray(record["beta"]), np.asarray(record["w"])
    chi2 = np.asarray(record["chi2"], float)
    a = record["analysis"]
    delta = chi2 - a["chi2_min"]
    log_w = record["config"].get("w_spacing", "log") == "log"
    fig = ax.figure
    drawn = []
    positive = delta[np.isfinite(delta) & (delta > 0)]
    exact = bool(np.nanmax(np.abs(chi2)) < EXACT_CHI2)
    if exact:
        ax.plot(np.repeat(beta, w.size), np.tile(w, beta.size), ".", color="0.6", ms=3, label="grid nodes")
        say_no_information(ax, float(np.nanmax(np.abs(chi2))), "β or w")
    elif beta.size > 1 and w.size > 1 and positive.size:
        # Log colours over the positive Delta chi^2 span: a linear or log(1 + x) scale puts
        # a profile spanning 1e2..1e5 into one colour.
        import matplotlib

        norm = LogNorm(vmin=max(positive.min(), 1e-3), vmax=max(positive.max(), positive.min() * 10))
        # Delta chi^2 = 0 (the minimum's own cell) has no place on a log scale: it is left white
        # (marked by the star), not painted with the smallest positive value's colour.
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white", under="white")
        if log_w:
            ax.set_yscale("log")  # before the mesh: its limits are then set on the log axis
        mesh = centred_mesh(ax, beta, w, np.ma.masked_where(~(delta > 0), delta), log_w, cmap=cmap, norm=norm)
        if decorate:
            fig.colorbar(mesh, ax=ax, label="Δχ² (log scale; white: Δχ² = 0)")
        drawn = [lvl for lvl in CONTOUR_LEVELS if np.sum(delta <= lvl) > 1 and delta.max() > lvl]
        if drawn:
            # Three line styles, not only three colours: the levels read in greyscale print too.
            cs = ax.contour(beta, w, delta.T, levels=drawn, colors=["white", "orange", "red"][: len(drawn)],
                            linestyles=["solid", "dashed", "dotted"][: len(drawn)], linewidths=1.6)
            ax.clabel(cs, fmt={lvl: f"{lvl:g}" for lvl in drawn}, fontsize=8)
    else:
        sc = ax.scatter(np.repeat(beta, w.size), np.tile(w, beta.size), c=delta.ravel(), cmap="viridis")
        if decorate:
            fig.colorbar(sc, ax=ax, label="Δχ²")
    m = a["minimum"]
    i, j = m["index"]
    converged = np.asarray(record.get("convergence", {}).get("converged", True), bool)
    if converged.shape == chi2.shape and not converged.all():
        bi, wi = np.nonzero(~converged)
        ax.plot(beta[bi], w[wi], "X", color="red", mec="white", mew=0.8, ms=9, ls="none", zorder=6,
                label=f"fit not certified ({bi.size} of {converged.size} points)")
    if not exact:
        ax.plot(beta[i], w[j], "w*", ms=14, mec="k", clip_on=False, zorder=5,
                label=f"grid minimum, χ² = {chi2_text(a.get('chi2_min_grid', a['chi2_min']))}")
    if m["refined"] and not exact:
        ax.plot(m["beta"], m["w"], "r+", ms=12, clip_on=False, zorder=6,
                label=("refitted minimum" if m.get("method") == "refit" else "quadratic refinement")
                + f", χ² = {chi2_text(m['chi2'])}")
    if beta.min() <= GOLDEN_LOOP_BETA <= beta.max():
        ax.axvline(GOLDEN_LOOP_BETA, color="k", ls="--", lw=1.2, label=f"Golden Loop β = {GOLDEN_LOOP_BETA:.4f}")
    label_beta_w(ax, log_w, w)
    v = a["verdict"]
    contours = (f"contours at Δχ² = {', '.join(f'{x:g}' for x in drawn)}" if drawn else
                "no 68/95/99.7 % contour crosses the grid")
    ax.set_title(f"Δχ² map — Path {v['path']}; {contours}", fontsize=10)
    if decorate:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    else:
        ax.legend(fontsize=7, loc="best")
    return ax


def _bound_side(values, lower, upper):
    """-1 on the lower bound, +1 on the upper, 0 inside (to a relative 1e-9 of the range)."""
    tol = 1e-9 * max(upper - lower, 1e-300)
    return np.where(values <= lower + tol, -1, np.where(values >= upper - tol, 1, 0))


def plot_parameter_maps(record, path):
    """S* and every parameter over the grid (`draw_parameter_maps`), written to `path`."""
    from matplotlib.figure import Figure

    rows = int(np.ceil((1 + len(record["param_names"])) / 4))
    fig = Figure(figsize=(16, 3.3 * rows))
    draw_parameter_maps(fig, record)
    save_figure(fig, path, dpi=90)


def draw_parameter_maps(fig, record):
    """S* and every parameter over the grid, as panels of the Figure `fig` (returned).  A parameter on the
    same bound everywhere gets a panel saying which bound, not a colour scale over one value; elsewhere
    points on a bound are marked by side (lower / upper); a flat direction's panels are greyed."""
    beta, w = np.asarray(record["beta"]), np.asarray(record["w"])
    params = np.asarray(record["params"], float)
    names = record["param_names"]
    bounds = record.get("config", {}).get("bounds", {})
    panels = [("S*", np.asarray(record["S"], float), None)] + [(n, params[..., k], n) for k, n in enumerate(names)]
    cols = 4
    rows = int(np.ceil(len(panels) / cols))
    # Shared axes and a fixed layout: tick and layout passes over ten log-scale
    # panels otherwise dominate a small scan's wall time.
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    fig.subplots_adjust(left=0.07, right=0.97, bottom=0.08, top=0.86, wspace=0.34, hspace=0.5)
    log_w = record["config"].get("w_spacing", "log") == "log"
    analysis = record.get("analysis", {})
    at_min = set(analysis.get("at_bounds_at_minimum", []))
    free_at_minimum = {n for n in names if n not in at_min and bounds.get(n, (0, 1))[0] != bounds.get(n, (0, 1))[1]}
    n_free_at_minimum = len(analysis.get("degeneracy") or [])
    flat = int(analysis.get("flat_directions", 0))
    for ax, (title, values, pname) in zip(axes.ravel(), panels, strict=False):
        ax.tick_params(labelleft=True, labelbottom=True)
        lo, hi = bounds.get(pname, (None, None)) if pname else (None, None)
        side = _bound_side(values, lo, hi) if lo is not None else np.zeros(values.shape, int)
        if lo is not None and lo == hi:
            ax.set_facecolor("0.9")
            ax.text(0.5, 0.5, f"fixed at {lo:g}", transform=ax.transAxes, ha="center", va="center")
        elif side.size and np.all(side == side.flat[0]) and side.flat[0] != 0:
            which = "lower" if side.flat[0] < 0 else "upper"
            ax.set_facecolor("#f2d7d5" if which == "upper" else "#d6e4f0")
            if which == "upper":  # hatched as well as coloured: the two bounds differ in greyscale print too
                ax.patch.set_hatch("///")
                ax.patch.set_edgecolor("#d9a9a4")
            ax.text(0.5, 0.5, f"on its {which} bound\n({lo if which == 'lower' else hi:g})\nat every point",
                    transform=ax.transAxes, ha="center", va="center")
        else:
            if log_w:
                ax.set_yscale("log")
            # A parameter free along a flat direction at the minimum: its map is where each fit stopped.
            noise = flat > 0 and pname in free_at_minimum
            mesh = centred_mesh(ax, beta, w, values, log_w, cmap="Greys" if noise else "cividis",
                                alpha=0.45 if noise else 1.0)
            fig.colorbar(mesh, ax=ax)
            if noise:
                ax.text(0.5, 0.5, "flat direction:\nwhere each fit\nstopped, not data", transform=ax.transAxes,
                        ha="center", va="center", fontsize=9, bbox={"facecolor": "white", "alpha": 0.85, "lw": 0})
            # Black-on-white and white-on-black triangles: visible on every colour of the map, each inside its
            # own cell (on a dense grid, fixed-size markers ran together into a sawtooth).
            cell_points = ax.get_position().width * fig.get_figwidth() * 72 / max(beta.size, 1)
            size = float(np.clip(0.7 * cell_points, 1.5, 5.0))
            for mark, face, edge, on in (("v", "black", "white", side < 0), ("^", "white", "black", side > 0)):
                if on.any():
                    bi, wi = np.nonzero(on)
                    ax.plot(beta[bi], w[wi], mark, color=face, mec=edge, mew=0.6, ms=size, ls="none")
        shown = parameter_label(pname) if pname else title
        ax.set_title(shown + (" (free at the minimum)" if pname in free_at_minimum else ""), fontsize=10)
    if log_w:
        log_w_axis(axes[0, 0], w)
    # Every panel labelled: each shows its own tick labels, so each says what they measure.
    for ax in axes.ravel()[:len(panels)]:
        ax.set_xlabel("β", labelpad=1)
        ax.set_ylabel("w", labelpad=1)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    note = ""
    if flat:
        note = (f"\nat the minimum {flat} of the {n_free_at_minimum} directions spanned by the free parameters are flat "
                f"(Hessian eigenvalue < 1e-8 of the largest):\nalong them a map (greyed) shows where the fit "
                f"stopped, not what the data prefer")
    fig.suptitle("Best-fit parameters and S* across the grid (▼ on the lower bound, ▲ on the upper)" + note,
                 fontsize=11)
    return fig


def plot_identifiability(record, path):
    """What pins beta along its profile: the profiled constants and the beta curvature
    (the Delta chi^2 profile itself is in profiles.png)."""
    from matplotlib.ticker import ScalarFormatter

    ident = record["analysis"]["identifiability"]
    beta = np.asarray(ident["beta"])
    fig, axes = bare_subplots(1, 2, figsize=(10, 4.0))
    fig.subplots_adjust(left=0.09, right=0.94, bottom=0.25, top=0.91, wspace=0.5)
    handles = axes[0].plot(beta, ident["S"], "o-", label=f"S* (coefficient of variation {ident.get('cv_S', 0):.2g})")
    axes[0].set_ylabel("S*")
    if "C_g" in ident:
        twin = axes[0].twinx()
        handles += twin.plot(beta, ident["C_g"], "s--", color="C1",
                             label=f"$C_g^*$ (coefficient of variation {ident.get('cv_C_g', 0):.2g})")
        twin.set_ylabel("$C_g^*$")
        twin.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    axes[0].yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    axes[0].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.17), fontsize=8, frameon=False)
    axes[0].set_xlabel("β")
    axes[0].set_title("profiled constants along the β profile", fontsize=10)
    curv = np.asarray([np.nan if c is None else c for c in ident.get("beta_curvature", [])], float)
    if curv.size and np.isfinite(curv).any():
        axes[1].plot(beta, curv, "o-", label=r"$\partial^2\chi^2_{\min}/\partial\beta^2$ at the profile's w")
        axes[1].axhline(0, color="gray", lw=0.8)
        finite = np.abs(curv[np.isfinite(curv)])
        wide = finite.max() > 1e3 * max(finite.min(), 1e-300)
        if wide:
            axes[1].set_yscale("symlog", linthresh=1.0)
        else:
            axes[1].yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
        axes[1].set_ylabel(r"$\partial^2\chi^2_{\min}/\partial\beta^2$" + ("  (symlog scale)" if wide else ""))
        if beta.min() <= GOLDEN_LOOP_BETA <= beta.max():
            axes[1].axvline(GOLDEN_LOOP_BETA, color="k", ls="--", lw=1, label=f"Golden Loop β = {GOLDEN_LOOP_BETA:.4f}")
        axes[1].legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), fontsize=8, frameon=False)
    else:
        axes[1].text(0.5, 0.5, "no curvature recorded", transform=axes[1].transAxes, ha="center", va="center")
    axes[1].set_xlabel("β")
    axes[1].set_title("β curvature (> 0: β constrained there)", fontsize=10)
    save_figure(fig, path, dpi=110)



def plot_scan(record, out_dir, fmt: str = "png") -> dict:
    """Every figure of an analysed scan record into out_dir, as png, pdf or svg.

    Parameters
    ----------
    record : dict
        An analysed scan record (``ScanResult`` with "analysis").
    out_dir : path
    fmt : {"png", "pdf", "svg"}

    Returns
    -------
    dict
        {figure name: file name}.
    """
    from .record import figure_files

    out = Path(out_dir)
    files = figure_files(fmt)
    plot_chi2_map(record, out / files["chi2_map"])
    plot_profiles(record, out / files["profiles"])
    plot_parameter_maps(record, out / files["parameter_maps"])
    plot_identifiability(record, out / files["identifiability"])
    return files
