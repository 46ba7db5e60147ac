"""The posterior of beta (and w) beside the scan's profile likelihood: one figure, one line of numbers each."""

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


if __name__ == "__main__":
    main(*sys.argv[1:3])
