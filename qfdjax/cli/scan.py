"""`qfdjax scan | report | merge`: profile scans, their analysis, and merging split scans."""

from __future__ import annotations

import os
import sys

from ..errors import InputError
from .common import parse_span, range3


def add_scan(sub):
    p = sub.add_parser("scan", help="profile-likelihood scan over a (beta, w) grid (default: the seed's 16 x 10)")
    p.add_argument("--beta", nargs=3, metavar=("START", "STOP", "N"), help="beta grid: N values from START to STOP (default 2.95 3.25 16)")
    p.add_argument("--w", nargs=3, metavar=("START", "STOP", "N"), help="w grid: N values from START to STOP (default 0.005 0.05 10)")
    p.add_argument("--w-spacing", choices=None, help="log (default) or linear")
    p.add_argument("--eta", type=float, help="lambda = eta*beta*0.88^2/11 at every point (default 0.03)")
    p.add_argument("--numerics", help="exact (default: converged quadrature) or reference (the seed's grid)")
    p.add_argument("--method", help="gradient (default), de or de+gradient")
    p.add_argument("--starts", type=int, help="gradient starts per point, Latin hypercube (default 8)")
    p.add_argument("--seed", type=int, help="seed of the starts (default 0); a point's starts depend only on it and the point")
    p.add_argument("--de-maxiter", type=int, help="generations of differential evolution (methods de, de+gradient)")
    p.add_argument("--bounds", help="TOML file overriding bounds or fixing values")
    p.add_argument("--leptons", help="comma-separated subset of e,mu,tau")
    p.add_argument("--r-max", type=float, help="outer radius of the energy integrals (default 10)")
    p.add_argument("--observables", help="comma-separated likelihood terms: mass[,g]")
    p.add_argument("--profile", help="density profile: boundary (default) or power")
    p.add_argument("--power-s", type=float, help="exponent s of the power profile (default 2)")
    p.add_argument("--chunk", type=int, default=None,
                   help="points per compiled chunk / checkpoint (default: about a 16th of the points, a power "
                        "of two from 64 to 1024)")
    p.add_argument("--config", help="TOML file with scan settings (flags override it)")
    p.add_argument("--points", help="START:STOP flat point range, for splitting a grid across hosts")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    p.add_argument("--format", default="png", help="file format of the figures: png (default), pdf or svg")
    p.add_argument("--out", help="output directory (default runs/scan-<config fingerprint>)")
    p.add_argument("--fc", type=int, metavar="N",
                   help="after the scan, Feldman-Cousins regions with N toys per grid point (as report --fc)")
    _add_team_arguments(p, "run the same command in every process; each fits a share of the points on its own "
                           "devices and process 0 writes the results. --out must be a directory every process shares.")
    p.set_defaults(run=_run_scan)


def _add_team_arguments(p, description: str) -> None:
    team = p.add_argument_group("several processes (jax.distributed)", description)
    team.add_argument("--coordinator", metavar="HOST:PORT",
                      help="where process 0 listens for the others (or $QFDJAX_COORDINATOR)")
    team.add_argument("--num-processes", type=int, metavar="N", help="processes in the team (or $QFDJAX_NUM_PROCESSES)")
    team.add_argument("--process-id", type=int, metavar="I", help="this process, 0..N-1 (or $QFDJAX_PROCESS_ID)")
    team.add_argument("--distributed", action="store_true",
                      help="take coordinator, N and I from the cluster (Slurm srun, Open MPI mpirun)")
    team.add_argument("--connect-timeout", type=int, metavar="S",
                      help="seconds to wait for every process to arrive (default 120, or $QFDJAX_CONNECT_TIMEOUT)")


def scan_config_from_args(args):
    """The scan's configuration: the --config file's settings, overridden by flags."""
    from ..errors import read_toml
    from ..scans.config import scan_config_from_mapping

    data = read_toml(args.config, "config") if args.config else {}
    fit = data.get("fit", {})
    fit = dict(fit) if isinstance(fit, dict) else fit
    for name in ("beta", "w"):
        if getattr(args, name) is not None:
            data[name] = range3(getattr(args, name), name)
    for flag in ("w_spacing", "eta", "numerics", "r_max", "profile", "power_s"):
        if getattr(args, flag) is not None:
            data[flag] = getattr(args, flag)
    for flag in ("leptons", "observables"):
        if getattr(args, flag):
            data[flag] = [x.strip() for x in getattr(args, flag).split(",") if x.strip()]
    for flag in ("method", "starts", "seed", "de_maxiter"):
        if getattr(args, flag) is not None and isinstance(fit, dict):
            fit[flag] = getattr(args, flag)
    if fit != {}:
        data["fit"] = fit
    return scan_config_from_mapping(data, bounds_file=args.bounds)


def _run_scan(args) -> int:
    from ..scans.report_text import scan_summary
    from ..scans.scan import run_scan
    from ..scans.rendezvous import run_token
    from ..scans.team import TeamAborted, join, settings_from
    from .supervise import follow_parent, is_child, run_child

    from ..scans.record import figure_files

    settings = settings_from(args.coordinator, args.num_processes, args.process_id, args.distributed,
                             args.connect_timeout)
    config = scan_config_from_args(args)
    figure_files(args.format)  # refused before a team member writes its announcement
    if args.fc is not None:
        from ..errors import check_range

        check_range("fc", args.fc, lower=1, upper=100_000, integer=True)
        if args.points or settings.enabled:
            raise InputError("--fc runs after a whole scan in one process: run it with qfdjax report DIR --fc N "
                             "once the parts are merged")
    point_range = None
    if args.points:
        point_range = parse_span(args.points, "points")
    out = args.out or f"runs/scan-{config.fingerprint()[:8]}"
    if settings.enabled:
        if not is_child():
            return run_child(args.argv, settings, out)
        follow_parent()
    try:
        team = join(settings, out, run_token(command="scan", config=config.fingerprint(), out=os.path.abspath(out),
                                             points=args.points, processes=settings.num_processes,
                                             coordinator=settings.coordinator))
        record = run_scan(config, out, chunk=args.chunk, progress=not args.no_progress, point_range=point_range,
                          team=team, figure_format=args.format)
    except KeyboardInterrupt:
        print(f"qfdjax scan: interrupted; finished chunks are saved in {out}/chunks: rerun the same command "
              f"to resume", file=sys.stderr)
        return 130
    except TeamAborted as err:
        print(f"qfdjax scan: error: {err}; finished chunks are kept in {out}: rerun every process's command "
              f"to resume", file=sys.stderr)
        return 1
    if not team.lead:
        share = record.get("processes", {}).get("per_process", [{}] * team.size)[team.rank]
        print(f"{team.label()}: fitted {share.get('fitted_points', '?')} points on {share.get('devices', '?')} "
              f"device(s) in {share.get('fit_s', float('nan')):.1f} s; process 0 wrote {out}/scan.json")
        return 0
    if point_range is not None:
        print(f"fitted points {point_range[0]}:{point_range[1]} into {out}; combine parts with qfdjax merge")
        return 0
    print(scan_summary(record))
    print(f"  results: {out}/scan.json, {out}/scan.npz, {out}/scan.csv; plots: " + ", ".join(f"{out}/{f}" for f in record["plots"].values()))
    if args.fc is not None:
        import argparse

        return _run_report(argparse.Namespace(dir=out, refit_intervals=False, fc=args.fc, fc_seed=args.seed or 0,
                                              fc_points=None, fc_chunk=8, format=args.format, coordinator=None,
                                              num_processes=None, process_id=None, distributed=False,
                                              connect_timeout=None, argv=[]))
    return 0


def add_report(sub):
    p = sub.add_parser("report", help="redo the analysis, verdict and plots of a saved scan")
    p.add_argument("dir", help="a finished scan directory (holding scan.json)")
    p.add_argument("--refit-intervals", action="store_true",
                   help="(re)find the Delta chi2 = 1 and 4 profile ends by refitting (loads JAX; scans written "
                        "before interval refits had interpolated ends)")
    p.add_argument("--fc", type=int, metavar="N",
                   help="Feldman-Cousins regions with N toys per grid point (loads JAX; resumable: finished points "
                        "are kept in DIR/fc/)")
    p.add_argument("--fc-seed", type=int, help="seed of the Feldman-Cousins toys (default 0)")
    p.add_argument("--fc-chunk", type=int,
                   help="grid points whose toys are fitted in one batch (default 8; the same value gives the same "
                        "numbers however the work is split or resumed)")
    p.add_argument("--fc-points", metavar="START:STOP",
                   help="with --fc: only these grid points' toys (split the work across hosts sharing DIR); a "
                        "final report DIR --fc N combines every host's points")
    p.add_argument("--format", default="png", help="file format of the figures: png (default), pdf or svg")
    _add_team_arguments(p, "with --fc: run the same command in every process; each fits the toys of a share of the "
                           "grid points and process 0 combines them. DIR must be a directory every process shares.")
    p.set_defaults(run=_run_report)


def _run_report(args) -> int:
    from ..scans.record import figure_files

    figure_files(args.format)  # an unknown format is refused in one line, before any work
    for flag in ("fc_seed", "fc_chunk", "fc_points"):
        if args.fc is None and getattr(args, flag) is not None:
            raise InputError(f"--{flag.replace('_', '-')} has no effect without --fc N: drop it, or add --fc N")
    args.fc_seed = 0 if args.fc_seed is None else args.fc_seed
    args.fc_chunk = 8 if args.fc_chunk is None else args.fc_chunk
    from ..scans.result import ScanResult
    from ..scans.team import settings_from
    from .supervise import follow_parent, is_child, run_child

    settings = settings_from(args.coordinator, args.num_processes, args.process_id, args.distributed,
                             args.connect_timeout)
    if settings.enabled and (args.fc is None or args.fc_points or args.refit_intervals):
        raise InputError("a team of processes runs report --fc N only (without --fc-points, which splits the "
                         "work by hand, or --refit-intervals)")
    if settings.enabled and not is_child():
        return run_child(args.argv, settings, args.dir, command="report")
    if settings.enabled:
        follow_parent()
        return _report(args, settings)
    from ..scans.checkpoint import hold_directory

    if args.fc_points:  # a share of the FC toys, beside the other hosts' shares: it writes no scan.json
        return _report(args, settings)
    # `report` rewrites scan.json (and with --fc adds DIR/fc/): one writer at a time, as for a scan.
    ScanResult.load(args.dir)  # a directory that is not a verified scan is refused before it is locked
    lock = hold_directory(args.dir, "dir", "or run this report after it")
    try:
        return _report(args, settings)
    finally:
        lock.close()


def _report(args, settings) -> int:
    from ..scans.record import finish_report
    from ..scans.rendezvous import run_token
    from ..scans.report_text import scan_summary
    from ..scans.result import ScanResult
    from ..scans.team import TeamAborted, join

    record = ScanResult.load(args.dir).to_dict()
    if record.get("points") != [0, len(record["beta"]) * len(record["w"])]:
        raise InputError(f"dir = {args.dir!r} holds a partial scan (points {record.get('points')}): merge first")
    if args.refit_intervals:
        from ..scans.config import ScanConfig
        from ..scans.intervals import refit_profile_intervals
        from ..scans.result import read_scan_arrays

        arrays = read_scan_arrays(args.dir, record)
        missing = [k for k in ("dchi2_dbeta", "dchi2_dw", "u") if k not in arrays]
        if missing:
            raise InputError(f"dir = {args.dir!r}: scan.npz has no {', '.join(missing)}: written by an older qfdjax")
        summary = {k: arrays[k] for k in ("chi2", "dchi2_dbeta", "dchi2_dw", "u")}
        record["profile_intervals"] = refit_profile_intervals(ScanConfig.from_dict(record["config"]),
                                                              record["beta"], record["w"], summary)
    if args.fc is not None:
        from ..stats.fc import fc_summary, run_fc

        from ..runtime import progress_callback

        progress = progress_callback(len(record["beta"]) * len(record["w"]), "point", "FC")

        fc_points: tuple[int, int] | None = None
        if getattr(args, "fc_points", None):
            fc_points = parse_span(args.fc_points, "fc points")
        team = join(settings, args.dir, run_token(command="report --fc", dir=os.path.abspath(args.dir), fc=args.fc,
                                                  seed=args.fc_seed, chunk=args.fc_chunk,
                                                  processes=settings.num_processes, coordinator=settings.coordinator))
        try:
            fc = run_fc(args.dir, args.fc, seed=args.fc_seed, progress=progress if team.lead else None,
                        point_range=fc_points, points_per_chunk=args.fc_chunk, team=team)
        except TeamAborted as err:
            print(f"qfdjax report: error: {err}; finished points are kept in {args.dir}/fc: rerun every process's "
                  f"command to resume", file=sys.stderr)
            return 1
        except BaseException as err:
            team.abort(f"{type(err).__name__}: {err}")
            raise
        if not team.lead:
            print(f"{team.label()}: fitted the Feldman-Cousins toys of its share of the grid points into "
                  f"{args.dir}/fc; process 0 wrote {args.dir}/scan.json")
            return 0
        if fc is None and fc_points is not None:
            print(f"fitted the Feldman-Cousins toys of points {fc_points[0]}:{fc_points[1]} into {args.dir}/fc; "
                  f"run qfdjax report {args.dir} --fc {args.fc} once every part is done")
            return 0
        record["fc"] = fc
    finish_report(record, args.dir, args.format)
    print(scan_summary(record))
    if "fc" in record:
        from ..stats.fc import fc_summary

        print(fc_summary(record["fc"]))
    return 0


def add_merge(sub):
    p = sub.add_parser("merge", help="merge partial scans (--points) or toy parts (toys --toys A:B) from several hosts")
    p.add_argument("dirs", nargs="+", help="the partial scan directories (one per --points range), or the toys "
                   "directories (one per --toys range)")
    p.add_argument("--out", required=True, help="directory for the merged scan")
    p.set_defaults(run=_run_merge)


def _run_merge(args) -> int:
    from ..scans.report_text import scan_summary
    from ..scans.merge import merge_scans

    from pathlib import Path

    if all((Path(d) / "toys.json").exists() for d in args.dirs):
        from ..stats.toy_merge import merge_toys
        from .toys import toys_table

        print(toys_table(merge_toys(args.dirs, args.out)))
        return 0
    record = merge_scans(args.dirs, args.out)
    print(scan_summary(record))
    return 0
