"""The Feldman-Cousins map: t_obs over the grid with the FC regions (filled) and Wilks' (outlined) at both CLs."""

from __future__ import annotations

import numpy as np

from ..fitting.levels import WILKS_2D


def plot_fc(record: dict, path) -> None:
    """t_obs over the grid with the Feldman-Cousins regions (filled) and Wilks' (outlined) at both CLs."""
    from matplotlib.figure import Figure

    from ..io import save_figure

    fig = Figure(figsize=(11, 4.2))
    draw_fc(fig.subplots(1, 2), record, decorate=True)
    fig.suptitle(r"Feldman–Cousins regions on the scan grid ($t = \chi^2_{\min}(\beta, w) - \chi^2_{\min}$ over the range)", fontsize=10)
    fig.subplots_adjust(left=0.08, right=0.97, bottom=0.27, top=0.87, wspace=0.25)
    save_figure(fig, path, dpi=110)


def draw_fc(axes, record: dict, decorate: bool = False):
    """The FC and Wilks regions at each CL into the two Axes `axes` (returned); the legends below them
    with `decorate` (qfdjax's own file), inside them without."""
    fc = record["fc"]
    beta, w = np.asarray(record["beta"], float), np.asarray(record["w"], float)
    t_obs = np.asarray(fc["t_observed"], float)
    for ax, key in zip(axes, fc["accepted"], strict=True):
        fcr = np.asarray(fc["accepted"][key], bool)
        wilks = np.asarray(fc["wilks_accepted"][key], bool)
        B, W = np.meshgrid(beta, w, indexing="ij")
        ax.scatter(B[~fcr], W[~fcr], s=14, c="0.75", marker="s", label="rejected (FC)")
        certified = np.asarray(fc.get("valid_toys", np.full(t_obs.shape, fc["toys"])), float)
        # Sizes nest, so nothing hides anything: the Wilks ring around the FC square, the best point a cross on it.
        ax.scatter(B[fcr], W[fcr], s=80, c="C0", marker="s", clip_on=False, zorder=3,
                   label=f"accepted (FC; {fc['toys']} toys/point, median {np.median(certified):.0f} certified)")
        ax.scatter(B[wilks], W[wilks], s=300, facecolors="none", edgecolors="C3", linewidths=1.4, clip_on=False,
                   zorder=4, label=rf"Wilks: $t_{{\rm obs}} \leq$ {WILKS_2D[float(key)]:g}")
        k = np.unravel_index(np.nanargmin(t_obs), t_obs.shape)
        ax.plot(beta[k[0]], w[k[1]], "x", color="white", ms=6, mew=1.6, clip_on=False, zorder=5)
        ax.plot(beta[k[0]], w[k[1]], "x", color="black", ms=6, mew=0.8, clip_on=False, zorder=6,
                label="best grid point")
        crit = np.asarray(fc["t_critical"][key], float)
        ax.set_xlabel("β")
        ax.set_ylabel("w")
        if record.get("config", {}).get("w_spacing", "log") == "log":
            from .plot_axes import log_w_axis

            log_w_axis(ax, w)
        ax.set_title(f"{100 * float(key):.4g} % CL: points accepted {int(fcr.sum())} (FC) vs {int(wilks.sum())} (Wilks); "
                     rf"median $t_{{\rm crit}}$ {np.nanmedian(crit):.3g} vs {WILKS_2D[float(key)]:g}", fontsize=9)
        if decorate:
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
        else:
            ax.legend(fontsize=7, loc="best")
    return axes
