"""`qfdjax relax`: the smallest widening of the bounds that brings chi^2 to a target."""

from __future__ import annotations

import sys

from .common import add_model_options, emit, fit_config_from_args, space_from_args, spec_from_args


def add_relax(sub):
    p = sub.add_parser("relax", help="smallest widening of the bounds (greedy by bound cost) that reaches chi2 <= T")
    p.add_argument("--beta", type=float, required=True, help="vacuum stiffness beta of the point")
    p.add_argument("--w", type=float, required=True, help="boundary thickness w of the point")
    p.add_argument("--target", type=float, default=1.0, help="chi2 to reach (default 1)")
    p.add_argument("--max-moves", type=int, default=3, help="most bounds to move (default 3)")
    add_model_options(p)
    p.add_argument("--out", help="write R.json here")
    p.set_defaults(run=_run_relax)


def _run_relax(args) -> int:
    from ..relax import relax, relax_summary

    observables = tuple(x.strip() for x in args.observables.split(",") if x.strip())
    result = relax(args.beta, args.w, target=args.target, max_moves=args.max_moves, space=space_from_args(args),
                   config=fit_config_from_args(args), numerics=args.numerics, observables=observables,
                   spec=spec_from_args(args), eta=args.eta,
                   progress=None if args.quiet else lambda m: print(m, file=sys.stderr, flush=True))
    emit(result, relax_summary(result), args.out)
    return 0
