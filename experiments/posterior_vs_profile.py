"""A posterior beside its profile likelihood: one figure, one line of numbers per parameter.

    posterior_vs_profile.py POSTERIOR_DIR SCAN_DIR             beta and w against the scan's profiles
    posterior_vs_profile.py POSTERIOR_DIR PROFILE.json ...     parameters against `fit --param-profile` ones
"""

import json
import pathlib
import sys
import warnings

import numpy as np


def main(posterior_dir: str, scan_dir: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    posterior_dir, scan_dir = pathlib.Path(posterior_dir), pathlib.Path(scan_dir)
    draws = az.from_netcdf(posterior_dir / "posterior.nc").posterior
    record = json.loads((posterior_dir / "posterior.json").read_text())
    scan = json.loads((scan_dir / "scan.json").read_text())
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    certified = record["summary"]["certified"]
    bounds = {"beta": record["settings"]["beta_bounds"], "w": record["settings"]["w_bounds"]}
    for ax, name in ((axes[0], "beta"), (axes[1], "w")):
        values = draws[name].values.ravel()
        ends = scan["analysis"][f"profile_{name}"]
        lo_edge, hi_edge = bounds[name]
        # Zoomed on the posterior and the profile's Delta chi2 = 4 interval: the grid is far wider than either.
        low = min(np.quantile(values, 0.001), ends["interval_4"][0] if ends["interval_4"][0] is not None else np.inf)
        high = max(np.quantile(values, 0.999), ends["min_refined"],
                   ends["interval_4"][1] if ends["interval_4"][1] is not None else -np.inf)
        pad = 0.08 * (high - low)
        ax.hist(values, bins=60, range=(low, high), density=True, color="0.55", label="posterior (all chains)")
        for level, key in (("1", "interval"), ("4", "interval_4")):
            lo_end, hi_end = ends[key]
            ax.axvspan(lo_end if lo_end is not None else lo_edge, hi_end if hi_end is not None else hi_edge,
                       color="tab:red", alpha=0.15 if level == "1" else 0.07, lw=0,
                       label=rf"profile $\Delta\chi^2 \leq {level}$ (refitted ends)")
        ax.axvline(ends["min_refined"], color="tab:red", lw=1.2, label="profile minimum")
        ax.set_xlim(low - pad, high + pad)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        ax.set_xlabel(r"$\beta$" if name == "beta" else "$w$")
        ax.set_ylabel("posterior density")
        ax.ticklabel_format(axis="x", useOffset=False)
        ax.legend(fontsize=8, loc="upper left")
        p = record["summary"]["parameters"][name]
        print(f"  {name}: posterior mean {p['mean']:.6g}, 68 % HDI [{p['hdi_68'][0]:.6g}, {p['hdi_68'][1]:.6g}]; "
              f"profile minimum {ends['min_refined']:.6g}, Delta chi2 <= 1 on [{ends['interval'][0]}, "
              f"{ends['interval'][1]}] (None: the grid's edge)" + ("" if certified else " (posterior NOT CERTIFIED)"))
    fig.suptitle(f"{record['where']}: posterior beside the profile of {scan_dir.name}"
                 + ("" if certified else " (posterior NOT CERTIFIED)"), fontsize=10)
    fig.tight_layout()
    fig.savefig(posterior_dir / "posterior_vs_profile.png", dpi=130)


def versus_parameter_profiles(posterior_dir: str, profiles) -> None:
    """Each parameter's marginal posterior against its refitted profile likelihood exp(-Δχ²/2), normalised."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qfdjax.fitting.params import parameter_label

    posterior_dir = pathlib.Path(posterior_dir)
    draws = az.from_netcdf(posterior_dir / "posterior.nc").posterior
    record = json.loads((posterior_dir / "posterior.json").read_text())
    certified = record["summary"]["certified"]
    fig, axes = plt.subplots(1, len(profiles), figsize=(5 * len(profiles), 3.8), squeeze=False)
    for ax, path in zip(axes[0], profiles, strict=True):
        profile = json.loads(pathlib.Path(path).read_text())
        (name,) = profile["parameters"]
        grid = np.asarray(profile["axes"][name], float)
        dchi2 = np.asarray(profile["delta_chi2"], float)
        likelihood = np.exp(-0.5 * (dchi2 - dchi2.min()))
        likelihood /= np.trapezoid(likelihood, grid)
        centre = profile["best"][name]
        values = draws[name].values.ravel()
        ax.hist(values - centre, bins=60, range=(grid[0] - centre, grid[-1] - centre), density=True, color="0.6",
                label="marginal posterior (64 chains)")
        ax.plot(grid - centre, likelihood, "o-", color="tab:red", ms=3, lw=1.2,
                label=r"profile likelihood $e^{-\Delta\chi^2/2}$, normalised")
        ax.set_xlabel(f"{parameter_label(name)} − {centre:.6g}")
        ax.set_ylabel("density")
        ax.set_ylim(0, 1.35 * likelihood.max())  # room for the legend above the peak
        ax.ticklabel_format(axis="both", style="sci", scilimits=(-3, 4), useOffset=False)
        ax.legend(fontsize=8, loc="upper left")
        p = record["summary"]["parameters"][name]
        print(f"  {name}: posterior mean {p['mean']:.8g}, sd {p['sd']:.4g}; profile minimum {centre:.8g}, "
              f"Delta chi2 = 1 half-width {_half_width(grid, dchi2):.4g}" + ("" if certified else " (NOT CERTIFIED)"))
    fig.suptitle(f"posterior at {record['where']} beside the refitted profile likelihood"
                 + ("" if certified else " (posterior NOT CERTIFIED)"), fontsize=10)
    fig.tight_layout()
    fig.savefig(posterior_dir / "posterior_vs_profile.png", dpi=130)


def _half_width(grid, dchi2) -> float:
    """Half the distance between the Δχ² = 1 crossings (linear interpolation on the refitted grid)."""
    k = int(np.argmin(dchi2))
    left = np.interp(1.0, dchi2[:k + 1][::-1], grid[:k + 1][::-1])
    right = np.interp(1.0, dchi2[k:], grid[k:])
    return 0.5 * (right - left)


if __name__ == "__main__":
    if pathlib.Path(sys.argv[2]).is_dir():
        main(*sys.argv[1:3])
    else:
        versus_parameter_profiles(sys.argv[1], sys.argv[2:])
