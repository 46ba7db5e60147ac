"""`qfdjax sensitivity | bench`: the seed's sensitivity study and the throughput benchmarks."""

from __future__ import annotations

import sys

from ..errors import InputError


def add_sensitivity(sub):
    p = sub.add_parser("sensitivity", help="the seed's sensitivity and resolution study at (3.1, 0.015)")
    p.add_argument("--starts", type=int, default=8, help="gradient starts per fit (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the starts (default 0)")
    p.add_argument("--out", default="runs/sensitivity", help="output directory")
    p.set_defaults(run=_run_sensitivity)


def _run_sensitivity(args) -> int:
    from pathlib import Path

    from ..errors import check_range
    from ..io import run_metadata, write_json
    from ..sensitivity import plot_sensitivity, run_sensitivity, sensitivity_summary

    check_range("starts", args.starts, lower=1, integer=True)
    check_range("seed", args.seed, lower=0, integer=True)
    result = run_sensitivity(starts=args.starts, seed=args.seed,
                             progress=lambda m: print(m, file=sys.stderr, flush=True))
    result |= run_metadata()
    out = Path(args.out)
    write_json(out / "sensitivity.json", result)
    plot_sensitivity(result, out / "sensitivity.png")
    print(sensitivity_summary(result))
    print(f"results: {out}/sensitivity.json, plot: {out}/sensitivity.png")
    return 0


def add_bench(sub):
    p = sub.add_parser("bench", help="throughput benchmarks (JAX vs the seed's NumPy/SciPy method)")
    p.add_argument("--quick", action="store_true", help="finish in well under a minute on 2 CPU cores")
    p.add_argument("--device", help="cpu or gpu (default: JAX's default device)")
    p.add_argument("--no-seed", action="store_true", help="skip timing the seed's NumPy/SciPy method")
    p.add_argument("--lower", metavar="PLATFORM",
                   help="instead of timing, lower every kernel the commands run for PLATFORM (cuda, rocm, tpu) "
                        "with jax.export on this machine: custom calls, cost analysis, roofline projection")
    p.add_argument("--out", help="write the results (JSON) here")
    p.set_defaults(run=_run_bench)


def _run_lower(args) -> int:
    from ..fitting.lowering import lower_all
    from ..io import run_metadata, write_json

    if args.lower not in ("cuda", "rocm", "tpu"):
        raise InputError(f"lower = {args.lower!r} is unknown: must be cuda, rocm or tpu")
    result = lower_all(args.lower) | run_metadata()
    for k in result["kernels"]:
        state = "lowered" if k["lowered"] else f"FAILED ({k['error']})"
        bad = k["cpu_only_calls"] + k["host_callbacks"]
        h200 = k["projected_s"]["H200"]
        print(f"  {k['name']:<20} batch {k['batch']:>5}  {state}; custom calls {k['custom_calls'] or 'none'}"
              + (f"; CPU-only or host calls {bad}" if bad else "")
              + (f"; {k['flops']:.3g} flops, {k['bytes']:.3g} bytes -> {1e6 * h200:.3g} us on one H200 "
                 f"(projection)" if h200 is not None else ""))
    print(f"lowering for {args.lower}: {'every kernel lowered, no CPU-only call' if result['ok'] else 'NOT ready'} "
          f"({len(result['kernels'])} kernels, {result['seconds']:.1f} s)")
    if args.out:
        write_json(args.out, result)
        print(f"wrote {args.out}")
    return 0 if result["ok"] else 1


def _run_bench(args) -> int:
    import jax

    from ..bench import bench_summary, run_bench
    from ..io import run_metadata, write_json

    if args.lower is not None:
        return _run_lower(args)

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
