"""Command line: `qfdjax energy | fit | scan | report | sensitivity | bench`.

A thin layer over functions of the same names in the package; every command's
output is also a Python return value.  Bad input exits with status 2 and a
one-line message before any work starts, leaving no partial output file.
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import InputError


def _add_energy(sub):
    p = sub.add_parser("energy", help="energies of single leptons (batched from JSON, or one case)")
    p.add_argument("--cases", help="JSON list of cases: beta, w, lam (or eta), R_c, U, A, optional num_theta, "
                   "r_min, r_max and reference grid knobs")
    p.add_argument("--numerics", default="exact", help="exact (default) or reference")
    p.add_argument("--out", help="write results as a JSON list here (with --cases)")
    p.add_argument("--chunk", type=int, default=65536, help="cases per compiled batch")
    p.add_argument("--beta", type=float)
    p.add_argument("--w", type=float)
    p.add_argument("--lam", type=float, help="gradient coefficient (default: from --eta)")
    p.add_argument("--eta", type=float, default=None, help="lambda = eta*beta*0.88^2/11 (default 0.03)")
    p.add_argument("--R-c", dest="R_c", type=float)
    p.add_argument("--U", type=float)
    p.add_argument("--A", type=float)
    p.add_argument("--num-theta", type=int)
    p.add_argument("--r-min", type=float)
    p.add_argument("--r-max", type=float)
    p.set_defaults(run=_run_energy)


def _run_energy(args) -> int:
    from .evaluate import OUTPUT_FIELDS, check_numerics_name, evaluate_cases
    from .io import write_json

    check_numerics_name(args.numerics)
    if args.chunk < 1:
        raise InputError(f"chunk = {args.chunk} is out of range: must be >= 1")
    if args.cases:
        try:
            with open(args.cases) as handle:
                cases = json.load(handle)
        except FileNotFoundError:
            raise InputError(f"cases = {args.cases!r}: no such file") from None
        except json.JSONDecodeError as err:
            raise InputError(f"cases = {args.cases!r} is not valid JSON: {err}") from None
        if not isinstance(cases, list):
            raise InputError(f"cases = {args.cases!r} must hold a JSON list of objects, got {type(cases).__name__}")
        results = evaluate_cases(cases, numerics=args.numerics, chunk_size=args.chunk)
        if args.out:
            write_json(args.out, results)
            print(f"wrote {len(results)} cases ({args.numerics} numerics) to {args.out}")
        else:
            print(json.dumps(results, indent=1))
        return 0
    missing = [n for n in ("beta", "w", "R_c", "U", "A") if getattr(args, n) is None]
    if missing:
        raise InputError("give --cases FILE, or all of --beta --w --R-c --U --A (missing: "
                         + ", ".join("--" + m.replace("_", "-") for m in missing) + ")")
    case = {k: getattr(args, k) for k in ("beta", "w", "R_c", "U", "A")}
    if args.lam is not None:
        case["lam"] = args.lam
    if args.eta is not None:
        case["eta"] = args.eta
    for key in ("num_theta", "r_min", "r_max"):
        if getattr(args, key) is not None:
            case[key] = getattr(args, key)
    (result,) = evaluate_cases([case], numerics=args.numerics)
    print(f"numerics: {args.numerics}")
    for key in ("beta", "w", "lam", "R_c", "U", "A"):
        print(f"  {key:<7}{result[key]:>22.12g}")
    for key in OUTPUT_FIELDS:
        print(f"  {key:<7}{result[key]:>22.15g}")
    if args.out:
        write_json(args.out, [result])
    return 0


def _add_model_options(p):
    p.add_argument("--lam", type=float, help="gradient coefficient lambda (default: from --eta)")
    p.add_argument("--eta", type=float, help="lambda = eta*beta*0.88^2/11 (default 0.03)")
    p.add_argument("--numerics", default="exact", help="exact (default) or reference")
    p.add_argument("--method", default="gradient", help="gradient (default), de or de+gradient")
    p.add_argument("--starts", type=int, default=8, help="gradient starts per point (Latin hypercube)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bounds", help="TOML file overriding bounds ([bounds.mu] R_c = [lo, hi]) or fixing values")
    p.add_argument("--leptons", default="e,mu,tau", help="comma-separated subset of e,mu,tau")
    p.add_argument("--de-maxiter", type=int, default=1000)
    p.add_argument("--r-max", type=float, help="outer radius of the energy integrals (default 10)")


def _space_from_args(args):
    from .params import ParameterSpace

    leptons = tuple(x.strip() for x in args.leptons.split(",") if x.strip())
    if args.bounds:
        return ParameterSpace.from_toml(args.bounds, leptons)
    return ParameterSpace.seed(leptons)


def _fit_config_from_args(args):
    from .fit import FitConfig

    return FitConfig(method=args.method, starts=args.starts, seed=args.seed, de_maxiter=args.de_maxiter)


def _spec_from_args(args):
    from .quadrature import SeedGridSpec

    try:
        return SeedGridSpec() if args.r_max is None else SeedGridSpec(r_max=args.r_max)
    except ValueError as err:
        raise InputError(str(err)) from None


def _add_fit(sub):
    p = sub.add_parser("fit", help="fit the lepton parameters at one (beta, w)")
    p.add_argument("--beta", type=float, required=True)
    p.add_argument("--w", type=float, required=True)
    _add_model_options(p)
    p.add_argument("--out", help="write the result (JSON) here")
    p.set_defaults(run=_run_fit)


def _run_fit(args) -> int:
    import time

    from .fit import fit
    from .io import run_metadata, write_json
    from .report_text import fit_table

    t0 = time.perf_counter()
    config = _fit_config_from_args(args)
    space = _space_from_args(args)
    spec = _spec_from_args(args)
    record = fit(args.beta, args.w, args.lam, eta=args.eta, numerics=args.numerics, config=config,
                 space=space, spec=spec)
    record["timings"]["wall_s_including_compile"] = time.perf_counter() - t0
    record["eta"] = args.eta
    record["r_max"] = spec.r_max
    record |= run_metadata()
    print(fit_table(record))
    if args.out:
        write_json(args.out, record)
        print(f"wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qfdjax", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_energy(sub)
    _add_fit(sub)
    for module in _EXTRA_COMMANDS:
        module(sub)
    return parser


_EXTRA_COMMANDS: list = []


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except InputError as err:
        print(f"qfdjax {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qfdjax {args.command}: interrupted", file=sys.stderr)
        return 130
