"""`qfdjax forecast`: expected sigma_beta for an observable set, from the Fisher matrix and the Asimov profile."""

from __future__ import annotations

from .common import add_model_options, emit, fit_config_from_args, space_from_args


def add_forecast(sub):
    p = sub.add_parser("forecast", help="expected sigma_beta for an observable set (Fisher matrix and Asimov data)")
    p.add_argument("--beta", type=float, required=True, help="vacuum stiffness beta of the truth")
    p.add_argument("--w", type=float, required=True, help="boundary thickness w (held fixed)")
    p.add_argument("--sigma", action="append", metavar="TERM=VALUE",
                   help="override a term's sigma: mass=1e-5 (relative, sigma_model) or g=1e-6 / g_tau=1e-6 "
                        "(absolute); repeatable")
    add_model_options(p)
    p.add_argument("--out", help="write the forecast (JSON) here")
    p.set_defaults(run=_run_forecast)


def _run_forecast(args) -> int:
    from ..errors import InputError
    from ..stats.forecast import check_sigmas, forecast

    if args.lam is not None:
        raise InputError("--lam cannot be used with forecast: lambda follows beta through --eta along the profile")
    observables = tuple(x.strip() for x in args.observables.split(",") if x.strip())
    record = forecast(args.beta, args.w, observables=observables, sigmas=check_sigmas(args.sigma),
                      space=space_from_args(args), eta=args.eta, numerics=args.numerics,
                      config=fit_config_from_args(args))
    emit(record, forecast_table(record), args.out)
    return 0


def forecast_table(r: dict) -> str:
    sig = ", ".join(f"{k} {v:g}" for k, v in r["sigmas"].items())
    lines = [f"forecast at beta = {r['beta']:.6g}, w = {r['w']:.6g} (fixed): observables {','.join(r['observables'])} "
             f"(sigma: {sig}); Asimov data = the best fit's prediction"]
    fisher = r["sigma_beta"]
    lines.append("  Fisher (lepton parameters profiled, active bounds held): "
                 + (f"sigma_beta = {fisher:.4g} ({100 * r['sigma_beta_relative']:.3g} % of beta)" if fisher else
                    "beta not constrained (curvature not positive beyond its rounding)"))
    if r["active_bounds"]:
        lines.append(f"    held on bounds at the truth: {', '.join(r['active_bounds'])}")
    wp = r["sigma_beta_w_profiled"]
    lines.append("  Fisher with w profiled too: " + (f"sigma_beta = {wp:.4g}" if wp else "beta not constrained"))
    ok = r["asimov_converged"]
    sides = []
    for k, side in enumerate(("lower", "upper")):
        end, distance = r["asimov_interval"][k], r["asimov_distances"][k]
        if end is None:
            sides.append(f"{side}: never reaches Delta chi2 = 1 within 256 Fisher errors (open)")
        else:
            sides.append(f"{side}: {end:.6g} (distance {distance:.4g}{'' if ok[k] else ', NOT converged'})")
    lines.append("  Asimov profile, Delta chi2 = 1 ends -- " + "; ".join(sides)
                 + (f"; sigma_beta_asimov = {r['sigma_beta_asimov']:.4g}" if r["sigma_beta_asimov"] else ""))
    return "\n".join(lines)
