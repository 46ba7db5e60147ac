"""Options and helpers shared by several subcommands."""

from __future__ import annotations

from ..errors import InputError


def add_model_options(p):
    p.add_argument("--lam", type=float, help="gradient coefficient lambda (default: from --eta)")
    p.add_argument("--eta", type=float, help="lambda = eta*beta*0.88^2/11 (default 0.03)")
    p.add_argument("--numerics", default="exact", help="exact (default) or reference")
    p.add_argument("--method", default="gradient", help="gradient (default), de or de+gradient")
    p.add_argument("--starts", type=int, default=8, help="gradient starts per point (Latin hypercube)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Latin-hypercube starts and of DE (default 0)")
    p.add_argument("--bounds", help="TOML file overriding bounds ([bounds.mu] R_c = [lo, hi]) or fixing values")
    p.add_argument("--leptons", default="e,mu,tau", help="comma-separated subset of e,mu,tau")
    p.add_argument("--de-maxiter", type=int, default=1000, help="generations of differential evolution (methods de, de+gradient)")
    p.add_argument("--r-max", type=float, help="outer radius of the energy integrals (default 10)")
    p.add_argument("--observables", default="mass", help="comma-separated likelihood terms: mass[,g]")
    p.add_argument("--profile", default="boundary", help="density profile: boundary (default) or power")
    p.add_argument("--power-s", type=float, default=2.0, help="exponent s of the power profile")


def add_point_options(p, free_means: str) -> None:
    """--beta, --w and --free with the globals' bounds: the point of `fit` and `sample` (free_means: what
    --free does there)."""
    p.add_argument("--beta", type=float, required=True, help="vacuum stiffness beta (the start, with --free beta)")
    p.add_argument("--w", type=float, required=True, help="boundary thickness w (the start, with --free w)")
    p.add_argument("--free", help=f"{free_means}: beta, w or beta,w")
    p.add_argument("--beta-bounds", nargs=2, type=float, metavar=("LO", "HI"),
                   help="bounds of beta with --free beta (default 2.5 4.5)")
    p.add_argument("--w-bounds", nargs=2, type=float, metavar=("LO", "HI"),
                   help="bounds of w with --free w (default 0.005 0.05)")


def parse_span(text: str, name: str) -> tuple[int, int]:
    """"A:B" as two integers (--points, --toys, --fc-points), or a one-line refusal naming the flag."""
    try:
        first, stop = (int(x) for x in text.split(":"))
    except ValueError:
        raise InputError(f"{name} = {text!r} is invalid: must be START:STOP (integers)") from None
    return first, stop


def space_from_args(args):
    from ..fitting.bounds_file import read_bounds_file
    from ..fitting.params import ParameterSpace

    leptons = tuple(x.strip() for x in args.leptons.split(",") if x.strip())
    if args.bounds:
        return read_bounds_file(args.bounds, leptons)
    return ParameterSpace.seed(leptons)


def space_from_model_file(path, leptons, observables, also=()):
    """The parameter space of a bounds file (with the tables `also` names besides), or of a scan configuration's
    bounds tables: `compare` and `sample` take either."""
    from ..errors import InputError, read_toml
    from ..fitting.bounds_file import read_bounds_file

    data = read_toml(path, "model")
    if "beta" in data or "w" in data:
        from ..scans.config import scan_config_from_mapping

        config = scan_config_from_mapping(data)
        space = config.space()
        # The configuration's model must be the one this command fits: never silently another likelihood.
        if space.leptons != tuple(leptons):
            raise InputError(f"{path} fits leptons {','.join(space.leptons)}: --leptons says {','.join(leptons)}")
        if tuple(config.observables) != tuple(observables):
            raise InputError(f"{path} uses observables {','.join(config.observables)}: --observables says "
                             f"{','.join(observables)}: give --observables {','.join(config.observables)}")
        return space
    return read_bounds_file(path, leptons, also)


def fit_config_from_args(args):
    from ..fitting.fit import FitConfig

    return FitConfig(method=args.method, starts=args.starts, seed=args.seed, de_maxiter=args.de_maxiter)


def spec_from_args(args):
    from ..model.quadrature import SeedGridSpec

    try:
        return SeedGridSpec() if args.r_max is None else SeedGridSpec(r_max=args.r_max)
    except ValueError as err:
        raise InputError(str(err)) from None



def range3(text_values, name):
    start, stop, n = text_values
    try:
        return float(start), float(stop), int(n)
    except ValueError:
        raise InputError(f"{name} = {' '.join(text_values)} is invalid: must be START STOP N "
                         f"(two numbers and an integer)") from None


def emit(record: dict, text: str, out) -> None:
    """Print a command's summary and write its JSON record (with run metadata) where asked."""
    from ..integrity import write_sealed_json
    from ..io import run_metadata
    from ..runtime import with_account

    record |= run_metadata()
    print(text)
    if out:
        record["timings"] = with_account(record.get("timings"))
        write_sealed_json(out, record)
        print(f"wrote {out}")
