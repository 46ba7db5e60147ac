"""1-D profiles of a scan: Δχ² along β or w with the minimum, the Δχ² = 1 and 4 levels and their ends."""

from __future__ import annotations

import numpy as np

from ..io import save_figure
from ..model.constants import GOLDEN_LOOP_BETA
from ..fitting.certificate import EXACT_CHI2
from .plot_axes import bare_subplots, log_w_axis, say_no_information


def draw_profile(ax, record, name: str = "beta", decorate: bool = True):
    """One 1-D profile (name "beta" or "w") of an analysed scan record into the Axes `ax`; returns `ax`.

    chi^2_min - min on a linear axis, the minimum, the Delta chi^2 = 1 and 4 levels and their ends.  With
    `decorate` (qfdjax's own file) the legend goes below the axes; without, it stays inside them."""
    a = record["analysis"]
    if name not in ("beta", "w"):
        from ..errors import InputError

        raise InputError(f"profile = {name!r} is unknown: must be beta or w")
    axis = np.asarray(record[name], float)
    prof = a[f"profile_{name}"]
    label = "β" if name == "beta" else "w"
    d = np.asarray(prof["delta_chi2"])
    largest = abs(a["chi2_min"]) + float(np.nanmax(np.abs(d)))
    if largest < EXACT_CHI2:
        ax.plot(axis, np.zeros_like(axis), ".", color="0.6", ms=4, label="grid nodes")
        say_no_information(ax, largest, label)
        ax.set_xlabel(label)
        ax.set_ylabel("Δχ²")
        ax.set_ylim(-1, 1)
        if label == "w" and record["config"].get("w_spacing", "log") == "log":
            log_w_axis(ax, axis, which="x")
        ax.legend(**_legend_place(decorate))
        return ax
    ax.plot(axis, d, "o-", ms=4, label="profile at the nodes (other axis refitted)"
            if prof.get("min_refined_method") == "refit" else "profile (min over the other axis)")
    k = int(np.nanargmin(d))
    if prof.get("min_refined_method") == "refit":
        ax.plot(prof["min_refined"], 0.0, "*", color="C3", ms=12, clip_on=False, zorder=5,
                label=f"refitted minimum at {label} = {prof['min_refined']:.5g}")
    else:
        ax.plot(axis[k], d[k], "*", color="C3", ms=12, clip_on=False, zorder=5,
                label=f"minimum at {label} = {axis[k]:.4g}")
    how = "refitted" if prof.get("interval_method") == "refit" else "interpolated"
    span = float(np.nanmax(d) - min(0.0, np.nanmin(d))) or 1.0
    hidden = []
    # Dotted and dashed, not only coloured: the levels read in greyscale print too.
    for level, key, colour, style in ((1.0, "interval", "C1", (0, (1, 1.5))), (4.0, "interval_4", "C2", (0, (4, 2)))):
        ends = prof.get(key, [None, None])
        found = [e for e in ends if e is not None]
        if level > np.nanmax(d) and not found:
            continue  # a level the profile never reaches is not drawn, nor named
        if level < 0.01 * span:
            # A level within 1 % of the axis is a line on the axis itself: say its ends in words instead.
            hidden.append(f"Δχ² = {level:g}: " + " .. ".join(f"{e:.6g}" if e is not None else "open" for e in ends))
        else:
            ax.axhline(level, color=colour, ls=style, lw=1.2, label=f"Δχ² = {level:g}")
        ones = [e for e in prof.get("interval", [None, None]) if e is not None]
        close = 0.005 * float(np.ptp(axis) or 1.0)
        for n, edge in enumerate(found):
            if level == 4.0 and any(abs(edge - e) < close for e in ones):
                continue  # drawn as the Δχ² = 1 end, whose label says both coincide there
            same = level == 1.0 and any(abs(edge - e) < close for e in prof.get("interval_4", [None, None])
                                        if e is not None)
            ax.axvline(edge, color=colour, ls=style, lw=1.6 if same else 1.2, zorder=3,
                       label=(f"Δχ² = 1 and 4 ends ({how}; within 0.5 % of the axis)" if same else
                              f"Δχ² = {level:g} ends ({how})") if n == 0 else None)
    if label == "β" and axis.min() <= GOLDEN_LOOP_BETA <= axis.max():
        ax.axvline(GOLDEN_LOOP_BETA, color="k", ls="-.", lw=1, label=f"Golden Loop β = {GOLDEN_LOOP_BETA:.4f}")
    ax.set_xlabel(label)
    symbol = r"\beta" if name == "beta" else "w"
    ax.set_ylabel(rf"$\Delta\chi^2 = \chi^2_{{\min}}({symbol}) - \chi^2_{{\min}}$")
    ax.set_ylim(bottom=min(0.0, np.nanmin(d)) - 0.03 * span)
    note = "Δχ² = 1 interval closed" if prof["closed"] else "Δχ² = 1 interval open"
    if prof["edge"]:
        note += f"; minimum on the {prof['edge']} edge"
    ax.set_title(note + ("\n" + "; ".join(hidden) if hidden else ""), fontsize=9)
    if label == "w" and record["config"].get("w_spacing", "log") == "log":
        log_w_axis(ax, axis, which="x")
    # Below the axes: a legend inside would cover the profile it explains; one column never runs past the edge.
    ax.legend(**_legend_place(decorate))
    return ax


def _legend_place(decorate: bool) -> dict:
    if decorate:
        return {"fontsize": 7, "loc": "upper center", "bbox_to_anchor": (0.5, -0.16), "ncol": 1, "frameon": False}
    return {"fontsize": 7, "loc": "best"}


def plot_profiles(record, path):
    """1-D profiles chi^2_min - min on a linear y axis, with the minimum and the Delta chi^2 = 1 ends in the legend;
    an axis with a single grid value gets no panel."""
    names = [n for n in ("beta", "w") if len(record[n]) > 1]
    fig, axes = bare_subplots(1, max(len(names), 1), figsize=(5.2 * max(len(names), 1), 5.0), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        draw_profile(ax, record, name)
    if not names:
        axes[0][0].axis("off")
        axes[0][0].text(0.5, 0.5, "a single grid point: no profile to draw", ha="center", va="center")
    # Fixed margins: tight_layout draws the whole figure once more to measure it (0.15 s).  The bottom one is
    # as tall as the longest legend below a panel, not a fixed band that stays blank under a short one.
    entries = max([len(ax.get_legend().get_texts()) for ax in axes[0] if ax.get_legend()] or [0])
    fig.subplots_adjust(left=0.12, right=0.98, bottom=min(0.5, 0.14 + 0.04 * entries), top=0.88, wspace=0.32)
    save_figure(fig, path, dpi=110)
