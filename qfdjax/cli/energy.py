"""`qfdjax energy`: energies of single leptons, one case or a batch from JSON."""

from __future__ import annotations

import json

from ..errors import InputError


def add_energy(sub):
    p = sub.add_parser("energy", help="energies of single leptons (batched from JSON, or one case)")
    p.add_argument("--cases", help="JSON list of cases: beta, w, lam (or eta), R_c, U, A, optional num_theta, "
                   "r_min, r_max and reference grid knobs")
    p.add_argument("--numerics", default="exact", help="exact (default) or reference")
    p.add_argument("--out", help="write results as a JSON list here (with --cases)")
    p.add_argument("--chunk", type=int, default=65536, help="cases per compiled batch")
    p.add_argument("--beta", type=float, help="vacuum stiffness beta of one case (with --w, --R-c, --U, --A)")
    p.add_argument("--w", type=float, help="boundary-layer width w (> 0)")
    p.add_argument("--lam", type=float, help="gradient coefficient (default: from --eta)")
    p.add_argument("--eta", type=float, default=None, help="lambda = eta*beta*0.88^2/11 (default 0.03)")
    p.add_argument("--R-c", dest="R_c", type=float, help="core radius R_c (> 0)")
    p.add_argument("--U", type=float, help="circulation velocity U (>= 0)")
    p.add_argument("--A", type=float, help="density-depletion amplitude A, in [0, 1]")
    p.add_argument("--num-theta", type=int, help="polar-angle points of the reference numerics' theta rule")
    p.add_argument("--r-min", type=float, help="inner radius of the energy integrals (< R_c)")
    p.add_argument("--r-max", type=float, help="outer radius of the energy integrals (default 10)")
    p.set_defaults(run=_run_energy)


def _run_energy(args) -> int:
    from ..evaluate import OUTPUT_FIELDS, evaluate_cases
    from ..model.numerics import check_numerics_name
    from ..io import write_json

    check_numerics_name(args.numerics)
    if args.chunk < 1:
        raise InputError(f"chunk = {args.chunk} is out of range: must be >= 1")
    if args.cases:
        from ..errors import read_json

        single = [f"--{n.replace('_', '-')}" for n in ("beta", "w", "R_c", "U", "A", "lam", "eta", "num_theta",
                                                      "r_min", "r_max") if getattr(args, n, None) is not None]
        if single:
            raise InputError(f"--cases cannot be combined with {', '.join(single)}: a cases file gives every "
                             f"value per case")

        cases = read_json(args.cases, "cases")
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
