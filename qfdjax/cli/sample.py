"""`qfdjax sample`: the posterior on the fit's likelihood by Hamiltonian Monte Carlo, chains as lanes."""

from __future__ import annotations

from .common import add_model_options, add_point_options


def add_sample(sub):
    p = sub.add_parser("sample", help="posterior by HMC (BlackJAX), many chains as lanes: draws, summary, corner plot")
    add_point_options(p, "sample globals too (uniform in --beta-bounds/--w-bounds)")
    p.add_argument("--chains", type=int, default=64, help="chains, run as lanes of one compiled call (default 64)")
    p.add_argument("--draws", type=int, default=1000, help="draws per chain after warm-up (default 1000)")
    p.add_argument("--warmup", type=int, default=1000, help="warm-up (adaptation) steps (default 1000)")
    p.add_argument("--sampler", default="chees", help="chees (default: HMC tuned across chains) or nuts")
    p.add_argument("--block", type=int, default=100, help="draws per compiled call between checkpoints (default 100)")
    add_model_options(p)
    p.add_argument("--out", required=True,
                   help="directory for posterior.json, posterior.nc (ArviZ), corner.png, trace.png and the checkpoint")
    p.set_defaults(run=_run_sample)


def _refuse_unused(args) -> None:
    from ..errors import InputError

    free = {x.strip() for x in (args.free or "").split(",") if x.strip()}
    for flag, needs, given in (("--beta-bounds", "--free beta", "beta" in free), ("--w-bounds", "--free w", "w" in free)):
        if getattr(args, flag[2:].replace("-", "_")) is not None and not given:
            raise InputError(f"{flag} has no effect without {needs}: drop it, or add {needs}")
    if args.lam is not None:
        raise InputError("--lam cannot be used with sample: lambda follows beta through --eta")
    if args.numerics != "exact":
        raise InputError(f"numerics = {args.numerics!r}: sample uses exact numerics (the seed's grid has no "
                         f"derivative in w for HMC to follow)")
    if args.method != "gradient" or args.starts != 8 or args.de_maxiter != 1000:
        raise InputError("--method, --starts and --de-maxiter have no effect on sample: drop them")


def _run_sample(args) -> int:
    from ..bayes.run import sample
    from ..bayes.sampler import SamplerConfig
    from ..bayes.summary import posterior_text
    from ..errors import read_toml
    from ..fitting.params import ParameterSpace
    from ..model.profiles import make_profile
    from ..runtime import progress_callback
    from .common import space_from_model_file, spec_from_args

    _refuse_unused(args)
    config = SamplerConfig(chains=args.chains, draws=args.draws, warmup=args.warmup, seed=args.seed,
                           method=args.sampler, block=args.block)
    leptons = tuple(x.strip() for x in args.leptons.split(",") if x.strip())
    observables = tuple(x.strip() for x in args.observables.split(",") if x.strip())
    if args.bounds:
        space = space_from_model_file(args.bounds, leptons, observables, also=("priors",))
        priors = read_toml(args.bounds, "bounds").get("priors")
    else:
        space, priors = ParameterSpace.seed(leptons), None
    free = tuple(x.strip() for x in (args.free or "").split(",") if x.strip())
    record = sample(args.beta, args.w, space=space, free=free, beta_bounds=tuple(args.beta_bounds or (2.5, 4.5)),
                    w_bounds=tuple(args.w_bounds or (0.005, 0.05)), eta=args.eta,
                    observables=observables, priors=priors,
                    config=config, profile=make_profile(args.profile, args.power_s), spec=spec_from_args(args),
                    out=args.out, progress=progress_callback(config.draws, "draw"))
    print(posterior_text(record))
    print(f"  results: {args.out}/posterior.json, posterior.nc; plots: corner.png, trace.png")
    return 0
