"""Axes of the scan figures: bare figures, log-w ticks, meshes whose cells sit on their nodes, and how a
chi² at rounding level is said rather than drawn."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def bare_subplots(*args, **kwargs):
    """pyplot.subplots' signature on a bare Figure: drawing to a file never touches the caller's backend."""
    fig = Figure(figsize=kwargs.pop("figsize", None))
    return fig, fig.subplots(*args, **kwargs)


def label_beta_w(ax, log_w, w=None):
    ax.set_xlabel("β")
    ax.set_ylabel("w")
    if log_w:
        log_w_axis(ax, w)


def log_w_axis(ax, w=None, which="y"):
    """Log scale in w, ticked at the 1-2-5 values inside the grid and nowhere else.

    The default log ticks put a single labelled tick (10^-2) on the seed's
    range 0.005..0.05 and many unlabelled minor ones, whose layout was a third
    of drawing the parameter maps; 0.005, 0.01, 0.02, 0.05 read better.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    if w is None or np.size(w) == 0 or not np.all(np.asarray(w) > 0):
        return
    lo, hi = float(np.min(w)), float(np.max(w))
    decades = range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1)
    ticks = [m * 10.0**d for d in decades for m in (1, 2, 5) if lo * (1 - 1e-9) <= m * 10.0**d <= hi * (1 + 1e-9)]
    if len(ticks) < 2:
        return  # a range too narrow for two nice values: keep matplotlib's ticks
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())


def cell_edges(values, log: bool) -> np.ndarray:
    """Edges of the cells centred on grid values: midpoints between neighbours (geometric ones on a log
    axis, where arithmetic midpoints put a log grid's cells off-centre), the outer cells as wide as their
    neighbours."""
    v = np.asarray(values, float)
    t = np.log(v) if log else v
    if t.size == 1:
        half = 0.05 if log else 0.05 * max(abs(t[0]), 1e-12)
        edges = np.array([t[0] - half, t[0] + half])
    else:
        middle = 0.5 * (t[1:] + t[:-1])
        edges = np.concatenate([[2 * t[0] - middle[0]], middle, [2 * t[-1] - middle[-1]]])
    return np.exp(edges) if log else edges


def centred_mesh(ax, beta, w, values, log_w, **kwargs):
    """pcolormesh with every cell centred on its node (geometrically on a log w axis) and every cell inside
    the axes: the limits are the outer cell edges."""
    beta_edges, w_edges = cell_edges(beta, False), cell_edges(w, log_w)
    mesh = ax.pcolormesh(beta_edges, w_edges, values.T, shading="flat", **kwargs)
    ax.set_xlim(beta_edges[0], beta_edges[-1])
    ax.set_ylim(w_edges[0], w_edges[-1])
    return mesh


def say_no_information(ax, largest: float, about: str) -> None:
    """In place of a colour scale or a curve of rounding noise: the statement that every fit is exact."""
    ax.text(0.5, 0.5, f"χ² = 0 to rounding at every grid point\n(largest {largest:.1g}): no information on {about}",
            transform=ax.transAxes, ha="center", va="center", fontsize=10,
            bbox={"facecolor": "white", "alpha": 0.9, "lw": 0})
