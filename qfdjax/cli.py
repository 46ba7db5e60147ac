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
    from .evaluate import OUTPUT_FIELDS, evaluate_cases
    from .numerics import check_numerics_name
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
    p.add_argument("--observables", default="mass", help="comma-separated likelihood terms: mass[,g]")
    p.add_argument("--profile", default="boundary", help="density profile: boundary (default) or power")
    p.add_argument("--power-s", type=float, default=2.0, help="exponent s of the power profile")


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
    from .profiles import make_profile

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


def _range3(text_values, name):
    start, stop, n = text_values
    try:
        return float(start), float(stop), int(n)
    except ValueError:
        raise InputError(f"{name} = {' '.join(text_values)} is invalid: must be START STOP N "
                         f"(two numbers and an integer)") from None


def _add_scan(sub):
    p = sub.add_parser("scan", help="profile-likelihood scan over a (beta, w) grid (default: the seed's 16 x 10)")
    p.add_argument("--beta", nargs=3, metavar=("START", "STOP", "N"))
    p.add_argument("--w", nargs=3, metavar=("START", "STOP", "N"))
    p.add_argument("--w-spacing", choices=None, help="log (default) or linear")
    p.add_argument("--eta", type=float)
    p.add_argument("--numerics")
    p.add_argument("--method")
    p.add_argument("--starts", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--de-maxiter", type=int)
    p.add_argument("--bounds", help="TOML file overriding bounds or fixing values")
    p.add_argument("--leptons", help="comma-separated subset of e,mu,tau")
    p.add_argument("--r-max", type=float)
    p.add_argument("--observables", help="comma-separated likelihood terms: mass[,g]")
    p.add_argument("--profile", help="density profile: boundary (default) or power")
    p.add_argument("--power-s", type=float)
    p.add_argument("--chunk", type=int, default=64, help="points per compiled chunk / checkpoint (default 64)")
    p.add_argument("--config", help="TOML file with scan settings (flags override it)")
    p.add_argument("--points", help="START:STOP flat point range, for splitting a grid across hosts")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", help="output directory (default runs/scan-<config fingerprint>)")
    p.set_defaults(run=_run_scan)


def scan_config_from_args(args):
    import dataclasses
    import tomllib

    from .fit import FitConfig
    from .params import ParameterSpace
    from .scan import ScanConfig

    data = {}
    if args.config:
        try:
            with open(args.config, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise InputError(f"config = {args.config!r}: no such file") from None
        except tomllib.TOMLDecodeError as err:
            raise InputError(f"config = {args.config!r} is not valid TOML: {err}") from None
    data.pop("description", None)
    fit = dict(data.pop("fit", {}))
    bounds_table = {"bounds": data.pop("bounds", {}), "fixed": data.pop("fixed", {}),
                    "shared": data.pop("shared", {})}
    for name in ("beta", "w"):
        if getattr(args, name) is not None:
            data[name] = _range3(getattr(args, name), name)
    for flag, key in (("w_spacing", "w_spacing"), ("eta", "eta"), ("numerics", "numerics"), ("r_max", "r_max"),
                      ("profile", "profile"), ("power_s", "power_s")):
        if getattr(args, flag) is not None:
            data[key] = getattr(args, flag)
    if args.leptons:
        data["leptons"] = tuple(x.strip() for x in args.leptons.split(",") if x.strip())
    if args.observables:
        data["observables"] = tuple(x.strip() for x in args.observables.split(",") if x.strip())
    for flag, key in (("method", "method"), ("starts", "starts"), ("seed", "seed"), ("de_maxiter", "de_maxiter")):
        if getattr(args, flag) is not None:
            fit[key] = getattr(args, flag)
    leptons = tuple(data.get("leptons", ("e", "mu", "tau")))
    space = ParameterSpace.from_toml(args.bounds, leptons) if args.bounds else \
        ParameterSpace.seed(leptons).from_mapping(bounds_table)
    data["bounds"] = space.as_dict()
    data["shared"] = space.shared_groups()
    data["fit"] = dataclasses.asdict(FitConfig(**{"starts": 8, **fit}))
    return ScanConfig.from_dict(data)


def _enable_compile_cache():
    """Reuse compiled kernels across runs (QFDJAX_CACHE_DIR; '0' turns it off)."""
    import os

    import jax

    path = os.environ.get("QFDJAX_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "qfdjax", "xla"))
    if path != "0":
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _run_scan(args) -> int:
    from .report_text import scan_summary
    from .scan import run_scan

    config = scan_config_from_args(args)
    point_range = None
    if args.points:
        try:
            a, b = (int(x) for x in args.points.split(":"))
        except ValueError:
            raise InputError(f"points = {args.points!r} is invalid: must be START:STOP (integers)") from None
        point_range = (a, b)
    out = args.out or f"runs/scan-{config.fingerprint()[:8]}"
    _enable_compile_cache()
    try:
        record = run_scan(config, out, chunk=args.chunk, progress=not args.no_progress, point_range=point_range)
    except KeyboardInterrupt:
        print(f"qfdjax scan: interrupted; finished chunks are saved in {out}/chunks: rerun the same command "
              f"to resume", file=sys.stderr)
        return 130
    if point_range is not None:
        print(f"fitted points {point_range[0]}:{point_range[1]} into {out}; combine parts with qfdjax merge")
        return 0
    print(scan_summary(record))
    print(f"  results: {out}/scan.json, {out}/scan.npz; plots: " + ", ".join(f"{out}/{f}" for f in record["plots"].values()))
    return 0


def _add_report(sub):
    p = sub.add_parser("report", help="redo the analysis, verdict and plots of a saved scan")
    p.add_argument("dir")
    p.set_defaults(run=_run_report)


def _run_report(args) -> int:
    from pathlib import Path

    from .analysis import analyse_scan
    from .io import write_json
    from .plots import plot_scan
    from .report_text import scan_summary

    path = Path(args.dir) / "scan.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"dir = {args.dir!r} has no scan.json: not a finished scan") from None
    if "analysis" not in record and record.get("points") != [0, len(record["beta"]) * len(record["w"])]:
        raise InputError(f"dir = {args.dir!r} holds a partial scan (points {record.get('points')}): merge first")
    record["analysis"] = analyse_scan(record)
    record["verdict"] = record["analysis"]["verdict"]
    record["plots"] = plot_scan(record, args.dir)
    write_json(path, record)
    print(scan_summary(record))
    return 0


def _add_merge(sub):
    p = sub.add_parser("merge", help="merge partial scans (run with --points on several hosts)")
    p.add_argument("dirs", nargs="+")
    p.add_argument("--out", required=True)
    p.set_defaults(run=_run_merge)


def _run_merge(args) -> int:
    from .report_text import scan_summary
    from .scan import merge_scans

    record = merge_scans(args.dirs, args.out)
    print(scan_summary(record))
    return 0


def _add_sensitivity(sub):
    p = sub.add_parser("sensitivity", help="the seed's sensitivity and resolution study at (3.1, 0.015)")
    p.add_argument("--starts", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/sensitivity", help="output directory")
    p.set_defaults(run=_run_sensitivity)


def _run_sensitivity(args) -> int:
    from pathlib import Path

    from .errors import check_range
    from .io import run_metadata, write_json
    from .plots import plot_sensitivity
    from .sensitivity import run_sensitivity, sensitivity_summary

    check_range("starts", args.starts, lower=1, integer=True)
    check_range("seed", args.seed, lower=0, integer=True)
    _enable_compile_cache()
    result = run_sensitivity(starts=args.starts, seed=args.seed,
                             progress=lambda m: print(m, file=sys.stderr, flush=True))
    result |= run_metadata()
    out = Path(args.out)
    write_json(out / "sensitivity.json", result)
    plot_sensitivity(result, out / "sensitivity.png")
    print(sensitivity_summary(result))
    print(f"results: {out}/sensitivity.json, plot: {out}/sensitivity.png")
    return 0


def _add_bench(sub):
    p = sub.add_parser("bench", help="throughput benchmarks (JAX vs the seed's NumPy/SciPy method)")
    p.add_argument("--quick", action="store_true", help="finish in well under a minute on 2 CPU cores")
    p.add_argument("--device", help="cpu or gpu (default: JAX's default device)")
    p.add_argument("--no-seed", action="store_true", help="skip timing the seed's NumPy/SciPy method")
    p.add_argument("--out", help="write the results (JSON) here")
    p.set_defaults(run=_run_bench)


def _run_bench(args) -> int:
    import jax

    from .bench import bench_summary, run_bench
    from .io import run_metadata, write_json

    if args.device is not None:
        if args.device not in ("cpu", "gpu"):
            raise InputError(f"device = {args.device!r} is unknown: must be cpu or gpu")
        try:
            jax.devices(args.device)
        except RuntimeError:
            raise InputError(f"device = {args.device!r} is not available here: JAX sees "
                             f"{', '.join(sorted({d.platform for d in jax.devices()}))}") from None
    result = run_bench(quick=args.quick, device=args.device, seed_method=not args.no_seed)
    metadata = run_metadata()
    metadata.pop("device")  # the benchmark's own device record is more detailed
    result |= metadata
    print(bench_summary(result))
    if args.out:
        write_json(args.out, result)
        print(f"wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qfdjax", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_energy(sub)
    _add_fit(sub)
    _add_scan(sub)
    _add_report(sub)
    _add_merge(sub)
    _add_sensitivity(sub)
    _add_bench(sub)
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
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; results files are already written.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
