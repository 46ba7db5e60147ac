"""What a run of chains supports: ArviZ's diagnostics, the refusal, the files and the figures (no JAX here).

A posterior is printed only when every sampled parameter has R-hat <= 1.01 and bulk and tail
ESS >= 400 (Vehtari et al. 2021); otherwise the summary names each failed criterion and the
numbers are written but labelled NOT CERTIFIED.  Divergent transitions are counted and reported;
any divergence also withholds the certificate (the draws may miss part of the posterior).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

RHAT_MAX = 1.01
ESS_MIN = 400
HDI_LEVELS = (0.68, 0.95)


def arviz_quietly():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ArviZ 0.2x announces its 1.0 refactor on import
        import arviz

    return arviz


def inference_data(names, draws, stats: dict, attrs: dict):
    """ArviZ InferenceData: posterior (chain, draw) per parameter; sample_stats per transition."""
    az = arviz_quietly()
    posterior = {n: draws[..., i] for i, n in enumerate(names)}
    return az.from_dict(posterior=posterior, sample_stats=stats, attrs=attrs)


def _hdi(az, values: np.ndarray, level: float) -> list[float]:
    lo, hi = az.hdi(np.ravel(values), hdi_prob=level)  # pooled over chains
    return [float(lo), float(hi)]


def summarize(names, draws: np.ndarray, divergent: np.ndarray) -> dict:
    """Per parameter: mean, sd, 68/95 % HDIs, R-hat, bulk/tail ESS; then the verdict with its reasons."""
    az = arviz_quietly()
    per = {}
    failed = []
    for i, name in enumerate(names):
        values = draws[..., i]
        rhat = float(az.rhat(values))
        ess_bulk = float(az.ess(values, method="bulk"))
        ess_tail = float(az.ess(values, method="tail"))
        per[name] = {"mean": float(values.mean()), "sd": float(values.std(ddof=1)),
                     **{f"hdi_{round(100 * p)}": _hdi(az, values, p) for p in HDI_LEVELS},
                     "quantiles": {q: float(np.quantile(values, float(q))) for q in
                                   ("0.025", "0.16", "0.5", "0.84", "0.975")},
                     "r_hat": rhat, "ess_bulk": ess_bulk, "ess_tail": ess_tail}
        # A constant draw (a parameter pinned by the box) gives NaN R-hat: that is a failure, not a pass.
        if not rhat <= RHAT_MAX:
            failed.append(f"{name}: R-hat {rhat:.4f} > {RHAT_MAX}")
        for kind, ess in (("bulk", ess_bulk), ("tail", ess_tail)):
            if not ess >= ESS_MIN:
                failed.append(f"{name}: {kind} ESS {ess:.0f} < {ESS_MIN}")
    n_divergent = int(np.sum(divergent))
    if n_divergent:
        failed.append(f"{n_divergent} divergent transitions of {divergent.size}")
    return {"parameters": per, "divergences": n_divergent, "transitions": int(divergent.size),
            "certified": not failed, "failed": failed,
            "criteria": f"R-hat <= {RHAT_MAX}, bulk and tail ESS >= {ESS_MIN} per parameter, no divergences"}


def _digits(sd: float) -> int:
    return max(2, min(12, 2 - int(math.floor(math.log10(sd))) if sd > 0 else 6))


def posterior_text(record: dict) -> str:
    summary = record["summary"]
    cfg = record["sampler"]
    lines = [f"posterior at {record['where']}: {cfg['chains']} chains x {cfg['draws']} draws "
             f"({cfg['method']}, warmup {cfg['warmup']}), {summary['divergences']} divergences"]
    if summary["certified"]:
        lines.append(f"  certified: {summary['criteria']}")
    else:
        lines.append(f"  NOT CERTIFIED ({summary['criteria']}): " + "; ".join(summary["failed"]))
        lines.append("  the numbers below are written for inspection; do not quote them as a posterior")
    lines.append(f"  {'parameter':<10} {'mean':>14} {'sd':>11} {'68 % HDI':>31} {'R-hat':>7} {'ESS bulk':>9} {'tail':>7}")
    for name, p in summary["parameters"].items():
        d = _digits(p["sd"])
        hdi = f"[{p['hdi_68'][0]:.{d}f}, {p['hdi_68'][1]:.{d}f}]"
        lines.append(f"  {name:<10} {p['mean']:>14.{d}f} {p['sd']:>11.3g} {hdi:>31} {p['r_hat']:>7.4f} "
                     f"{p['ess_bulk']:>9.0f} {p['ess_tail']:>7.0f}")
    if not record["mode"]["converged"]:
        lines.append(f"  the density's mode was not located (log density still to gain "
                     f"{record['mode']['newton_decrement']:.3g}): chains start from an approximate Laplace fit")
    lines.append(f"  likelihood: {record['likelihood']}")
    lines.append(f"  prior: {record['prior_text']}")
    return "\n".join(lines)


def plot_corner(names, draws: np.ndarray, path, title: str) -> None:
    import corner
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fitting.params import parameter_label
    from ..io import save_figure

    flat = draws.reshape(-1, draws.shape[-1]).copy()
    labels = [parameter_label(n) if "." in n else {"beta": r"$\beta$", "w": "$w$"}.get(n, n) for n in names]
    # A posterior far narrower than its value would print as an axis offset ("1e-5+1.5e-1") over the
    # next panel's labels: draw it as the difference from a round centre named in the axis label.
    for i in range(flat.shape[1]):
        centre = float(f"{np.median(flat[:, i]):.3g}")
        if np.std(flat[:, i]) < 1e-3 * abs(centre):
            flat[:, i] -= centre
            labels[i] = f"{labels[i]} − {centre:g}"
    # A parameter the chains never moved (a pinned box) has no histogram range: corner would raise.
    spans = [(lo, hi) if hi > lo else (lo - 1e-12, hi + 1e-12) for lo, hi in zip(flat.min(0), flat.max(0), strict=True)]
    fig = corner.corner(flat, labels=labels, range=spans, quantiles=(0.16, 0.5, 0.84), show_titles=True,
                        title_fmt=".3g", levels=(0.393, 0.865), smooth=0.8, plot_datapoints=False,
                        fill_contours=True, label_kwargs={"fontsize": 11}, title_kwargs={"fontsize": 9})
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if hasattr(axis.get_major_formatter(), "set_useOffset"):
                axis.get_major_formatter().set_useOffset(False)
    fig.suptitle(title, fontsize=10, y=1.0)
    save_figure(fig, path, bbox_inches="tight")
    plt.close(fig)


def plot_trace(names, draws: np.ndarray, path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import save_figure

    d = draws.shape[-1]
    fig, axes = plt.subplots(d, 1, figsize=(8, 1.6 * d + 0.6), sharex=True, squeeze=False)
    shown = min(draws.shape[0], 8)  # eight chains stay readable; all of them enter the diagnostics
    for i, ax in enumerate(axes[:, 0]):
        for c in range(shown):
            ax.plot(draws[c, :, i], lw=0.4, alpha=0.8)
        ax.set_ylabel(names[i], fontsize=9)
        ax.ticklabel_format(axis="y", useOffset=False, style="sci", scilimits=(-3, 4))
    axes[-1, 0].set_xlabel("draw (after warm-up)")
    fig.suptitle(f"{title}: {shown} of {draws.shape[0]} chains", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))  # the title above the first panel, not on it
    save_figure(fig, path)
    plt.close(fig)
