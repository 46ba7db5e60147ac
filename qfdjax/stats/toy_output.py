"""What a toys run leaves in --out: toys.json (the record and its config), toys.npz (per-toy arrays),
toys.csv (one row per toy) and toys.png (chi^2 of the toys against chi^2(ndf) with the observed value,
Delta chi^2 at the truth against chi^2(1) for the coverage parameters, how often each parameter ends on
a bound)."""

from __future__ import annotations

import numpy as np

from ..fitting.params import parameter_label
from ..fitting.certificate import EXACT_CHI2, chi2_text
from ..scans.result import RecordView

from .toys import chi2_pdf


def write_toys(record: dict, out_dir) -> dict:
    """toys.json (everything but the arrays), toys.npz (the arrays), toys.csv (one row per toy), toys.png."""
    import csv
    import io as _io

    from ..io import check_output_dir, run_metadata, write_npz, write_text

    out = check_output_dir(out_dir, "out")
    arrays = record["arrays"]
    summary = {k: v for k, v in record.items() if k != "arrays"} | run_metadata()
    summary["files"] = {"json": str(out / "toys.json"), "npz": str(out / "toys.npz"), "csv": str(out / "toys.csv"),
                        "figure": str(out / "toys.png")}
    write_npz(out / "toys.npz", **arrays)
    text = _io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    names = list(summary["truth"])
    cover = [k for k in arrays if k.startswith("dchi2_truth_")]
    searched = [k for k in arrays if k.startswith("valid_")]
    writer.writerow(["toy", "valid", "chi2", *summary["data_names"], *names, *cover, *searched])
    first = summary.get("toy_range", [0])[0]
    for i in range(len(arrays["chi2"])):
        writer.writerow([first + i, int(arrays["valid"][i]), repr(float(arrays["chi2"][i])),
                         *(repr(float(v)) for v in arrays["data"][i]), *(repr(float(v)) for v in arrays["params"][i]),
                         *(repr(float(arrays[c][i])) for c in cover), *(int(arrays[c][i]) for c in searched)])
    write_text(out / "toys.csv", text.getvalue())
    from ..integrity import write_sealed_json
    from ..runtime import spending, with_account

    with spending("io"):
        plot_toys(summary, arrays, out / "toys.png")
    summary["timings"] = with_account(summary.get("timings"))
    write_sealed_json(out / "toys.json", summary, toys_npz=out / "toys.npz")
    return summary


def plot_toys(summary: dict, arrays: dict, path) -> None:
    """chi^2 of the toys with the chi^2(ndf) density and the observed value; Delta chi^2 at the truth
    for the coverage parameters against chi^2(1); the fraction of toys on each bound."""
    # A bare Figure, not pyplot: drawing a file never touches the caller's matplotlib backend.
    from matplotlib.figure import Figure

    from ..io import save_figure

    valid = np.asarray(arrays["valid"], bool)
    chi2 = np.asarray(arrays["chi2"], float)[valid]
    fig = Figure(figsize=(15, 4.2))
    axes = fig.subplots(1, 3)
    ax = axes[0]
    ndf = summary["ndf"]
    # Every toy fitted to rounding: a histogram would draw noise on a 1e-12 x 1e13 scale.
    exact = bool(chi2.size) and float(np.max(np.abs(chi2))) < EXACT_CHI2
    if exact:
        ax.text(0.5, 0.5, f"all {chi2.size} certified toys fitted exactly\n(every χ² ≤ {np.max(np.abs(chi2)):.1g}: "
                f"rounding)\nobserved χ² = {chi2_text(summary['chi2_observed'])}", transform=ax.transAxes,
                ha="center", va="center", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    elif chi2.size:
        top = np.quantile(chi2, 0.995) * 1.2 + 1e-12
        ax.hist(chi2, bins=40, range=(0, top), density=True, color="0.6", label=f"{chi2.size} valid toys")
        if ndf >= 1:
            x = np.linspace(top / 400, top, 400)
            ax.plot(x, chi2_pdf(x, ndf), "k-", lw=1.5, label=f"χ²({ndf}) density")
    obs = summary["chi2_observed"]
    p = summary["p_value"]
    if ndf <= 0 or p is None:
        p_text = "undefined (0 degrees of freedom)"
    elif summary["p_value_upper_95"] is not None:
        p_text = f"p < {summary['p_value_upper_95']:.2g} (95 % CL; no toy as large)"
    else:
        p_text = f"p = {p:.3g} ± {summary['p_value_error']:.2g}"
    if exact:
        pass
    elif chi2.size and obs <= ax.get_xlim()[1]:
        ax.axvline(obs, color="C3", lw=2, label=f"observed χ² = {chi2_text(obs)}")
    else:
        ax.text(0.97, 0.95, f"observed χ² = {obs:.4g}\n(off this scale)", transform=ax.transAxes, ha="right",
                va="top", color="C3", fontsize=9)
    ax.set_xlabel(r"$\chi^2_{\min}$ of a toy")
    ax.set_ylabel("density")
    ax.set_title(f"goodness of fit: {p_text}", fontsize=10, pad=14)  # above the axis' offset label
    if not exact:
        ax.legend(fontsize=8, loc="center right")
    ax = axes[1]
    cover = [k for k in arrays if k.startswith("dchi2_truth_")]
    if cover:
        for n, key in enumerate(cover):
            name = key.removeprefix("dchi2_truth_")
            use = valid & np.asarray(arrays.get(f"valid_{name}", valid), bool)
            d = np.clip(np.asarray(arrays[key], float)[use], 0.0, None)
            c = summary["coverage"][name]
            # Solid, dashed, dotted: equal histograms (β and w often are) stay distinguishable.
            ax.hist(d, bins=40, range=(0, 8), density=True, histtype="step", lw=1.5, color=f"C{n}",
                    ls=("-", "--", ":", "-.")[n % 4],
                    label=f"{parameter_label(name) if name not in ('beta', 'w') else {'beta': 'β'}.get(name, name)}: "
                          f"covered {100 * c['0.6827']:.1f} ± {100 * c['0.6827_error']:.1f} % at Δχ² ≤ 1")
        x = np.linspace(0.02, 8, 400)
        ax.plot(x, chi2_pdf(x, 1), "k--", lw=1.2, label="χ²(1) (Wilks)")
        ax.axvline(1.0, color="0.4", lw=0.8, ls=":")
        ax.axvline(4.0, color="0.4", lw=0.8, ls=":")
        ax.set_xlabel("Δχ² at the true value (other parameters refitted)")
        ax.set_ylabel("density")
        ax.set_ylim(0, 1.5)
        ax.legend(fontsize=7)
        ax.set_title("coverage of the Δχ² intervals", fontsize=10)
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, "no coverage requested\n(--coverage NAMES)", ha="center", va="center")
    ax = axes[2]
    names = list(summary["fraction_on_bound"])
    fractions = [summary["fraction_on_bound"][n] for n in names]
    ax.barh(range(len(names)), fractions, color="0.5")
    ax.set_yticks(range(len(names)), [parameter_label(n) for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of valid toys with the parameter on a bound")
    ax.set_ylabel("free parameters")
    ax.set_title("bounds at the toys' optima", fontsize=10)
    if not any(fractions):
        ax.text(0.5, 0.5, "no toy's optimum is on a bound", transform=ax.transAxes, ha="center", va="center")
    for k, fraction in enumerate(fractions):
        if fraction:
            ax.text(min(fraction, 0.85) + 0.02, k, f"{100 * fraction:.0f} %", va="center", fontsize=8)
    fig.suptitle(f"{summary['n']} toys at β = {summary['beta']:g}, w = {summary['w']:g} "
                 f"({summary['n_valid']} certified); data ~ N(prediction, σ)", fontsize=10)
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.14, top=0.85, wspace=0.35)
    save_figure(fig, path, dpi=100)


class ToysResult(RecordView):
    """Pseudo-experiments: the toys.json record (a mapping) and the per-toy arrays of toys.npz (`arrays`;
    ``r["arrays"]`` is the same dict)."""

    def __init__(self, record: dict, arrays: dict):
        super().__init__({k: v for k, v in record.items() if k != "arrays"})
        self.arrays = arrays

    def __getitem__(self, key):
        return self.arrays if key == "arrays" else self._record[key]

    @property
    def p_value(self):
        """The goodness-of-fit p-value over certified toys (None where undefined: no degrees of freedom)."""
        return self._record.get("p_value")

    @property
    def chi2(self) -> np.ndarray:
        return np.asarray(self.arrays["chi2"], float)

    def __repr__(self) -> str:
        return (f"ToysResult({self._record.get('n')} toys at beta = {self._record.get('beta')}, w = "
                f"{self._record.get('w')}, {self._record.get('n_valid')} certified, p = {self.p_value})")
