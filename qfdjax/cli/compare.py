"""`qfdjax compare`: a nested pair of configurations at one (beta, w): Δchi², Wilks' p, the toys' p, AIC, BIC."""

from __future__ import annotations

from .common import emit, fit_config_from_args, space_from_model_file


def add_compare(sub):
    p = sub.add_parser("compare", help="nested models (two bounds TOML files) at one (beta, w): Wilks, toys, AIC, BIC")
    p.add_argument("--null", required=True, help="bounds TOML of the null model (the special case)")
    p.add_argument("--alt", required=True, help="bounds TOML of the alternative (contains the null)")
    p.add_argument("--beta", type=float, required=True, help="vacuum stiffness beta of the point")
    p.add_argument("--w", type=float, required=True, help="boundary thickness w of the point")
    p.add_argument("--toys", type=int, default=0, help="toys from the null's best fit, both models refitted (default 0)")
    p.add_argument("--chunk", type=int, default=256, help="toys per compiled call (default 256)")
    p.add_argument("--eta", type=float, help="lambda = eta*beta*0.88^2/11 (default 0.03)")
    p.add_argument("--starts", type=int, default=8, help="gradient starts per fit (Latin hypercube)")
    p.add_argument("--seed", type=int, default=0, help="seed of the starts and of the toys (default 0)")
    p.add_argument("--leptons", default="e,mu,tau", help="comma-separated subset of e,mu,tau")
    p.add_argument("--observables", default="mass", help="comma-separated likelihood terms: mass[,g]")
    p.add_argument("--out", help="write the comparison (JSON) here")
    p.set_defaults(run=_run_compare, method="gradient", de_maxiter=1000)


def _run_compare(args) -> int:
    from ..runtime import progress_callback
    from ..stats.compare import compare, compare_text

    leptons = tuple(x.strip() for x in args.leptons.split(",") if x.strip())
    observables = tuple(x.strip() for x in args.observables.split(",") if x.strip())
    null, alt = (space_from_model_file(path, leptons, observables) for path in (args.null, args.alt))
    record = compare(null, alt, args.beta, args.w, toys=args.toys, seed=args.seed, chunk=args.chunk, eta=args.eta,
                     observables=observables,
                     config=fit_config_from_args(args), progress=progress_callback(args.toys, "toy") if args.toys else None)
    record["files"] = {"null": args.null, "alt": args.alt}
    emit(record, compare_text(record), args.out)
    return 0

