"""`qfdjax toys`: pseudo-experiments at one (beta, w): goodness of fit and interval coverage."""

from __future__ import annotations

from ..fitting.certificate import chi2_text
from .common import add_model_options, fit_config_from_args, parse_span, space_from_args


def add_toys(sub):
    p = sub.add_parser("toys", help="pseudo-experiments at one (beta, w): GOF p-value and coverage of intervals")
    p.add_argument("--beta", type=float, required=True, help="vacuum stiffness beta of the point")
    p.add_argument("--w", type=float, required=True, help="boundary thickness w of the point")
    p.add_argument("--n", type=int, default=1000, help="number of toys (default 1000)")
    p.add_argument("--truth", help="JSON file {\"mu.U\": 0.04, ...} overriding the best fit as the toys' truth")
    p.add_argument("--coverage", help="comma-separated parameters whose Delta chi2 = 1 and 4 interval coverage "
                   "is measured (one constrained refit per toy and parameter), and beta or w (each toy's own "
                   "minimum over it, the other held at the truth)")
    p.add_argument("--chunk", type=int, default=256, help="toys per compiled call (default 256)")
    p.add_argument("--toys", metavar="A:B", help="fit only toys A..B-1 of the --n (one host's share: "
                   "qfdjax merge joins the parts into exactly the one-run result)")
    add_model_options(p)
    p.set_defaults(starts=4)
    p.add_argument("--out", required=True, help="directory for toys.json, toys.npz, toys.csv and toys.png")
    p.set_defaults(run=_run_toys)


def _run_toys(args) -> int:

    from ..errors import InputError, read_json
    from ..runtime import import_in_background
    from ..stats.toys import ToyConfig, run_toys

    import_in_background("matplotlib.figure", "matplotlib.ticker", "matplotlib.backends.backend_agg")

    if args.method != "gradient":
        raise InputError(f"method = {args.method!r}: toys refit with the gradient method only")
    coverage = tuple(x.strip() for x in (args.coverage or "").split(",") if x.strip())
    part = parse_span(args.toys, "toys") if args.toys else None
    toys = ToyConfig(n=args.n, seed=args.seed, coverage=coverage, chunk=args.chunk, part=part)
    truth = read_json(args.truth, "truth") if args.truth else None
    observables = tuple(x.strip() for x in args.observables.split(",") if x.strip())
    from ..runtime import progress_callback

    progress = progress_callback(toys.n, "toy")

    record = run_toys(args.beta, args.w, args.lam, toys=toys, eta=args.eta, numerics=args.numerics,
                      config=fit_config_from_args(args), space=space_from_args(args), observables=observables,
                      truth=truth, progress=progress)
    from ..stats.toy_output import write_toys

    summary = write_toys(record, args.out)
    print(toys_table(summary))
    return 0


def toys_table(s: dict) -> str:
    share = s.get("toy_range", [0, s["n"]])
    which = f"{s['n']} toys" if share == [0, s.get("n_total", s["n"])] else (
        f"toys {share[0]}:{share[1]} of {s['n_total']} (a part: qfdjax merge joins the parts)")
    lines = [f"toys at beta = {s['beta']:.6g}, w = {s['w']:.6g}: {which} (seed {s['seed']}), "
             f"{s['n_valid']} certified; {s['sigma_convention']}",
             f"  observed chi2_min = {chi2_text(s['chi2_observed'], '.10g')} ({s['ndf']} degrees of freedom)"]
    everyone = s.get("n_all", s["n"])
    if s.get("uncertified_reasons"):
        lines.append("  not certified: " + ", ".join(f"{n} {why}" for why, n in s["uncertified_reasons"].items()))
    if s["ndf"] <= 0:
        lines.append("  goodness of fit: undefined (no degrees of freedom: every toy fits exactly)")
    elif s["p_value_upper_95"] is not None:
        lines.append(f"  goodness of fit: no toy has chi2 >= observed: p < {s['p_value_upper_95']:.3g} (95 % CL, "
                     f"{s['n_valid']} certified toys)")
    else:
        lines.append(f"  goodness of fit: p = {s['p_value']:.4g} +- {s['p_value_error']:.2g} over {s['n_valid']} "
                     f"certified toys, {s['p_value_all']:.4g} +- {s['p_value_all_error']:.2g} over all "
                     f"{s['n_all_finite']} (fraction of toys with chi2 >= observed)")
    mean, median, mean_all, median_all = (chi2_text(s[key], ".4g") for key in (
        "chi2_toys_mean", "chi2_toys_median", "chi2_toys_mean_all", "chi2_toys_median_all"))
    lines.append(f"  toys' chi2_min: mean {mean}, median {median} over {s['n_valid']} certified; mean {mean_all}, "
                 f"median {median_all} over all {everyone}")
    for name, c in s["coverage"].items():
        a = c["all"]
        lines.append(f"  coverage of {name}: {100 * c['0.6827']:.1f} +- {100 * c['0.6827_error']:.1f} % at "
                     f"Delta chi2 <= 1 (nominal 68.27 %), {100 * c['0.9545']:.1f} +- {100 * c['0.9545_error']:.1f} % "
                     f"at <= 4 (nominal 95.45 %) over {c['n']} certified toys"
                     + (f" (whose search over {name} is certified)" if c["n"] != s["n_valid"] else "")
                     + (f"; over all {a['n']}: {100 * a['0.6827']:.1f} / {100 * a['0.9545']:.1f} %"
                        if a["n"] != c["n"] else ""))
    on = {k: v for k, v in s["fraction_on_bound"].items() if v > 0}
    if on:
        lines.append("  on a bound in: " + ", ".join(f"{k} {100 * v:.0f} %" for k, v in on.items()))
    lines.append(f"  time: {s['timings']['toys_s']:.2f} s ({s['timings']['per_toy_ms']:.2f} ms per toy)")
    lines.append(f"  results: {', '.join(s['files'].values())}")
    return "\n".join(lines)
