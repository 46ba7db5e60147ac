"""`qfdjax fit`: one (beta, w) point with its convergence evidence."""

from __future__ import annotations

from typing import Any
import math

from .common import add_model_options, add_point_options, emit, fit_config_from_args, space_from_args, spec_from_args


ONE_SIGMA = math.erf(1.0 / math.sqrt(2.0))  # 0.6827: the CL at which Delta chi2 = 1 for one parameter


def add_fit(sub):
    p = sub.add_parser("fit", help="fit the lepton parameters at one (beta, w)")
    add_point_options(p, "fit globals too (the profile minimum, found directly)")
    p.add_argument("--minos", nargs="?", const="*", metavar="NAMES",
                   help="MINOS-style asymmetric errors by refitting, at --cl: every free parameter, or the "
                        "comma-separated NAMES (e.g. mu.U,tau.U)")
    p.add_argument("--param-profile", metavar="NAME[,NAME2]",
                   help="refitted Delta chi2 profile of one parameter, or the confidence contour of a pair "
                        "(written as JSON, CSV and PNG beside --out)")
    p.add_argument("--cl", type=float,
                   help="confidence level of --minos and --param-profile (default 0.6827, one sigma: Delta chi2 = 1 "
                        "for one parameter)")
    p.add_argument("--profile-points", type=int,
                   help="refits per parameter axis of --param-profile (default 21; a pair takes the square)")
    p.add_argument("--profile-span", type=float,
                   help="half-width of --param-profile in HESSE errors (default 3; cut by the bounds)")
    add_model_options(p)
    p.add_argument("--out", help="write the result (JSON) here")
    p.set_defaults(run=_run_fit)


def _check_flags_used(args) -> None:
    """A flag that would do nothing is refused in one line (before any work), never silently ignored."""
    from ..errors import InputError

    free = {x.strip() for x in (args.free or "").split(",") if x.strip()}
    for flag, needs, given in (("--beta-bounds", "--free beta", "beta" in free),
                               ("--w-bounds", "--free w", "w" in free),
                               ("--profile-points", "--param-profile", bool(args.param_profile)),
                               ("--profile-span", "--param-profile", bool(args.param_profile)),
                               ("--cl", "--minos or --param-profile", args.minos is not None or bool(args.param_profile))):
        if getattr(args, flag[2:].replace("-", "_")) is not None and not given:
            raise InputError(f"{flag} has no effect without {needs}: drop it, or add {needs}")
    if args.cl is None:
        args.cl = ONE_SIGMA
    if args.profile_points is None:
        args.profile_points = 21
    if args.profile_span is None:
        args.profile_span = 3.0


def _run_fit(args) -> int:
    import time

    from ..fitting.fit import fit
    from ..scans.report_text import fit_table

    t0 = time.perf_counter()
    _check_flags_used(args)
    config = fit_config_from_args(args)
    space = space_from_args(args)
    spec = spec_from_args(args)
    from ..model.profiles import make_profile

    observables = tuple(x.strip() for x in args.observables.split(",") if x.strip())
    kwargs = dict(eta=args.eta, numerics=args.numerics, config=config, space=space, spec=spec,
                  observables=observables, profile=make_profile(args.profile, args.power_s))
    from ..errors import check_range

    check_range("cl", args.cl, lower=0.0, upper=1.0, lower_open=True, upper_open=True)
    minos_names = None
    if args.minos is not None and args.minos != "*":
        from ..errors import InputError

        minos_names = [x.strip() for x in args.minos.split(",") if x.strip()]
        for name in minos_names:
            if name not in space.names:
                raise InputError(f"minos parameter {name!r} is unknown: parameters are {', '.join(space.names)}")
            if space.fixed[space.names.index(name)]:
                raise InputError(f"minos parameter {name} is fixed (or a shared follower): no interval to profile")
    if args.free:
        from ..errors import InputError
        from ..fitting.profile_fit import fit_profile

        if args.lam is not None:
            raise InputError("--lam cannot be combined with --free: lambda follows beta through --eta")
        free = tuple(x.strip() for x in args.free.split(",") if x.strip())
        record: Any = fit_profile(args.beta, args.w, free, beta_bounds=tuple(args.beta_bounds or (2.5, 4.5)),
                                  w_bounds=tuple(args.w_bounds or (0.005, 0.05)), **kwargs)
    else:
        record = fit(args.beta, args.w, args.lam, **kwargs)
    # MINOS and parameter profiles refit with the same settings, in their own spaces.
    refit_kwargs = {k: v for k, v in kwargs.items() if k != "space"}
    if args.minos is not None:
        from ..fitting.minos import minos
        from ..fitting.result import delta_chi2_for

        names = minos_names or [n for n, f in zip(space.names, space.fixed, strict=True)
                                if not f and n not in record["at_bounds"]]
        details = minos(record, names, space, level=delta_chi2_for(args.cl), **refit_kwargs)
        record["minos"] = {n: [d["lower"], d["upper"]] for n, d in details.items()}
        record["minos_details"] = details
        record["minos_cl"] = args.cl
    if args.param_profile:
        from ..fitting.param_profile import parameter_profile, write_profile

        names = [x.strip() for x in args.param_profile.split(",") if x.strip()]
        profile = parameter_profile(record, names, space, cl=args.cl, points=args.profile_points,
                                    span=args.profile_span, **refit_kwargs)
        base = (args.out[:-5] if args.out and args.out.endswith(".json") else args.out) or "runs/fit"
        record["param_profile"] = {"files": write_profile(profile, f"{base}-profile-{'-'.join(names)}"),
                                   "interval": profile.get("interval"), "level": profile["level"],
                                   "contour_closed": profile.get("contour_closed")}
    record["timings"]["wall_s_including_compile"] = time.perf_counter() - t0
    record["r_max"] = spec.r_max
    emit(record, fit_table(record), args.out)
    return 0
