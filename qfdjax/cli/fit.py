"""`qfdjax fit`: one (beta, w) point with its convergence evidence."""

from __future__ import annotations

from .common import add_model_options, fit_config_from_args, space_from_args, spec_from_args


def add_fit(sub):
    p = sub.add_parser("fit", help="fit the lepton parameters at one (beta, w)")
    p.add_argument("--beta", type=float, required=True)
    p.add_argument("--w", type=float, required=True)
    add_model_options(p)
    p.add_argument("--out", help="write the result (JSON) here")
    p.set_defaults(run=_run_fit)


def _run_fit(args) -> int:
    import time

    from ..fitting.fit import fit
    from ..io import run_metadata, write_json
    from ..scans.report_text import fit_table

    t0 = time.perf_counter()
    config = fit_config_from_args(args)
    space = space_from_args(args)
    spec = spec_from_args(args)
    from ..model.profiles import make_profile

    observables = tuple(x.strip() for x in args.observables.split(",") if x.strip())
    record = fit(args.beta, args.w, args.lam, eta=args.eta, numerics=args.numerics, config=config,
                 space=space, spec=spec, observables=observables, profile=make_profile(args.profile, args.power_s))
    record["timings"]["wall_s_including_compile"] = time.perf_counter() - t0
    record["eta"] = args.eta
    record["r_max"] = spec.r_max
    record |= run_metadata()
    print(fit_table(record))
    if args.out:
        write_json(args.out, record)
        print(f"wrote {args.out}")
    return 0
