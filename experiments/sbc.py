"""Simulation-based calibration of `qfdjax sample` on the identifiable configuration (rank histograms)."""

import argparse
import json
import pathlib

import numpy as np

from qfdjax.bayes.calibration import simulation_based_calibration
from qfdjax.bayes.sampler import SamplerConfig
from qfdjax.fitting.bounds_file import read_bounds_file

ROOT = pathlib.Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--simulations", type=int, default=400)
    parser.add_argument("--chains", type=int, default=8)
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    space = read_bounds_file(ROOT / "configs" / "identifiable_mu_tau_U.toml")
    config = SamplerConfig(chains=args.chains, draws=args.draws, warmup=args.warmup)
    import time

    t0 = time.perf_counter()
    result = simulation_based_calibration(space, 3.1, 0.015, simulations=args.simulations, config=config)
    elapsed = time.perf_counter() - t0
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "sbc.npz", ranks=result["ranks"], truth=result["truth"])
    summary = {k: v for k, v in result.items() if k not in ("ranks", "truth", "draws")} | {"wall_s": elapsed}
    (out / "sbc.json").write_text(json.dumps(summary, indent=1))
    plot(summary, out / "sbc_ranks.png")
    print(f"SBC on the identifiable configuration: {args.simulations} simulations, {args.chains} chains x "
          f"{args.draws} draws (warm-up {args.warmup}), {result['divergences']} divergences, {elapsed:.1f} s")
    for name in result["names"]:
        print(f"  {name}: rank-histogram uniformity p = {result['parameters'][name]['p_uniform']:.3f} "
              f"({result['bins']} bins)")


def plot(summary: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qfdjax.fitting.params import parameter_label

    names, sims, bins = summary["names"], summary["simulations"], summary["bins"]
    draws = summary["draws_per_simulation"]
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    expected = sims / bins
    band = 1.96 * np.sqrt(expected * (1 - 1 / bins))
    for ax, name in zip(axes[0], names, strict=True):
        counts = summary["parameters"][name]["histogram"]
        ax.bar(np.arange(len(counts)), counts, width=0.9, color="0.45", zorder=2)
        ax.axhspan(expected - band, expected + band, color="tab:blue", alpha=0.18, lw=0, zorder=1,
                   label="95 % band of a uniform histogram")
        ax.axhline(expected, color="tab:blue", lw=1, zorder=3)
        ax.set_xlabel(f"rank of the true {parameter_label(name)} among {draws} draws ({bins} bins)")
        ax.set_title(f"{parameter_label(name)}: uniformity p = {summary['parameters'][name]['p_uniform']:.2f}",
                     fontsize=10)
    axes[0, 0].set_ylabel("simulations")
    axes[0, 0].legend(fontsize=8, loc="lower left")
    s = summary["sampler"]
    fig.suptitle(f"Simulation-based calibration: {sims} data sets from the prior, {s['chains']} chains x "
                 f"{s['draws']} draws each", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


if __name__ == "__main__":
    main()
