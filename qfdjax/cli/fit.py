"""`qfdjax fit`: one (beta, w) point with its convergence evidence."""

from __future__ import annotations

from .common import add_model_options, emit, fit_config_from_args, space_from_args, spec_from_args


def add_fit(sub):
    p = sub.add_parser("fit", help="fit the lepton parameters at one (beta, w)")
    p.add_argument("--beta", type=float, required=True, help="vacuum stiffness beta (the start, with --free beta)")
    p.add_argument("--w", type=float, required=True, help="boundary thickness w (the start, with --free w)")
    p.add_argument("--free", help="fit globals too: beta, w or beta,w (the profile minimum, found directly)")
    p.add_argument("--beta-bounds", nargs=2, type=float, default=(2.5, 4.5), metavar=("LO", "HI"),
                   help="bounds of beta with --free beta (default 2.5 4.5)")
    p.add_argument("--w-bounds", nargs=2, type=float, default=(0.005, 0.05), metavar=("LO", "HI"),
                   help="bounds of w with --free w (default 0.005 0.05)")
    p.add_argument("--minos", help="comma-separated parameters to get MINOS-style asymmetric errors for "
                   "(profiled by refitting; e.g. mu.U,tau.U)")
    add_model_options(p)
    p.add_argument("--out", help="write the result (JSON) here")
    p.set_defaults(run=_run_fit)


def _run_fit(args) -> int:
    import time

    from ..fitting.fit import fit
    from ..scans.report_text import fit_table

    t0 = time.perf_counter()
    config = fit_config_from_args(args)
    space = space_from_args(args)
    spec = spec_from_args(args)
    from ..model.profiles import make_profile

    observables = tuple(x.strip() for x in args.observables.split(",") if x.strip())
    kwargs = dict(eta=args.eta, numerics=args.numerics, config=config, space=space, spec=spec,
                  observables=observables, profile=make_profile(args.profile, args.power_s))
    if args.free:
        from ..errors import InputError
        from ..fitting.profile_fit import fit_profile

        if args.lam is not None:
            raise InputError("--lam cannot be combined with --free: lambda follows beta through --eta")
        free = tuple(x.strip() for x in args.free.split(",") if x.strip())
        record = fit_profile(args.beta, args.w, free, beta_bounds=tuple(args.beta_bounds),
                             w_bounds=tuple(args.w_bounds), **kwargs)
    else:
        record = fit(args.beta, args.w, args.lam, **kwargs)
    if args.minos:
        from ..fitting.minos import minos

        names = [x.strip() for x in args.minos.split(",") if x.strip()]
        details = minos(record, names, space, **{k: v for k, v in kwargs.items() if k != "space"})
        record["minos"] = {n: [d["lower"], d["upper"]] for n, d in details.items()}
        record["minos_details"] = details
    record["timings"]["wall_s_including_compile"] = time.perf_counter() - t0
    record["r_max"] = spec.r_max
    emit(record, fit_table(record), args.out)
    return 0
