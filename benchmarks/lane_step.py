"""Where one LM lane-step's time goes (512 lanes of the seed's 9-parameter fit, exact numerics).

Each piece is one jitted, vmapped call over the lanes, timed as the best of `--repeat` calls after
compiling, and divided by the lane count:

- `energies`: the three leptons' energies alone (the primal);
- `energies_and_derivatives`: the energies with their R_c, U and A derivatives (one R_c tangent
  through the quadrature, U and A in closed form), all leptons as one batch;
- `energies_and_derivatives_lanes`: the same vmapped over the lanes, three leptons each, as the LM's
  linearisation runs them (with the lanes on the last axis: `qfdjax.model.batching`);
- `residuals`, `linearize`: the likelihood's residuals, and residuals with their Jacobian in the
  unit-box coordinates (what every LM step computes at its trial point);
- `damped_step`: the row-space solve of one damped step;
- `lm_lane_step`: a whole LM round of `--steps` iterations (no tolerance stops it), per lane and
  iteration, as `benchmarks/whole_process.py` measures it.

    python benchmarks/lane_step.py [--out benchmarks/results/lane-step-cpu-2cores.json]

To compare two versions of the package on one machine, run it with PYTHONPATH pointing at each
checkout in turn, interleaved: this machine's timings vary by 10-30 % between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def _best(fn, args, repeat: int, lanes: int) -> float:
    import jax

    compiled = jax.jit(fn)
    jax.block_until_ready(compiled(*args))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        best = min(best, time.perf_counter() - t0)
    return best / lanes


def seed_lanes(lanes: int, steps: int = 24) -> dict:
    """`lanes` LM lanes of the seed's fit at random (beta, w) of the seed's grid range, from Latin-hypercube
    starts: the problem, its numerics and points, and the arguments of one LM round of `steps` steps
    that no tolerance stops (also what `whole_process.lm_step_seconds` times)."""
    import numpy as np

    from qfdjax.fitting.fit import resolve_lambda
    from qfdjax.fitting.kernel import initial_starts
    from qfdjax.fitting.likelihood import Likelihood
    from qfdjax.fitting.optimize import LMConfig
    from qfdjax.fitting.params import ParameterSpace
    from qfdjax.fitting.problem import Problem, make_numerics
    from qfdjax.model.profiles import BoundaryLayer

    space = ParameterSpace.seed()
    problem = Problem.build(space, Likelihood.masses_only(space.leptons), BoundaryLayer())
    rng = np.random.default_rng(0)
    beta, w = rng.uniform(2.95, 3.25, lanes), rng.uniform(0.005, 0.05, lanes)
    lam = np.array([resolve_lambda(b) for b in beta])
    u = initial_starts(space, 1, np.arange(lanes), 0)[0][:, 0]
    numerics = make_numerics("exact", w)
    data = np.broadcast_to(problem.likelihood.data(), (lanes, 3)).copy()
    round_args = (numerics, beta, w, lam, data, u, np.full(lanes, np.nan), np.full(lanes, 1e-3),
                  np.zeros(lanes, np.int64), np.zeros(lanes, bool), np.zeros(lanes, np.int64),
                  np.full((lanes, 3), np.nan), np.full((lanes, 3, u.shape[1]), np.nan),
                  np.full(lanes, steps, np.int64), np.full(lanes, -1, np.int64), np.zeros(lanes))
    return {"problem": problem, "numerics": numerics, "points": (u, beta, w, lam), "round_args": round_args,
            "lm": LMConfig(max_steps=10**6, ftol=0.0, gtol=0.0)}


def measure(lanes: int = 512, steps: int = 24, repeat: int = 30) -> dict:
    import jax
    import numpy as np

    import qfdjax
    from qfdjax.fitting.kernel import _lm_round, _linearize
    from qfdjax.fitting.optimize.lm import damped_step
    from qfdjax.model.energy import lepton_energies, lepton_energies_and_derivatives

    setup = seed_lanes(lanes, steps)
    problem, numerics, lm = setup["problem"], setup["numerics"], setup["lm"]
    u, beta, w, lam = setup["points"]
    x = np.asarray(problem.box.from_unit(u)).reshape(lanes, -1, 3)
    leptons = x.shape[1]
    per_lepton = [np.repeat(v, leptons) for v in (beta, w, lam)] + [x[..., k].ravel() for k in range(3)]

    times = {
        "energies": _best(lambda *a: lepton_energies(*a).total, per_lepton, repeat, lanes),
        "energies_and_derivatives": _best(lambda *a: lepton_energies_and_derivatives(*a), per_lepton, repeat,
                                          lanes),
        "energies_and_derivatives_lanes": _best(
            jax.vmap(lambda b, ww, lm, rc, uu, a: lepton_energies_and_derivatives(b, ww, lm, rc, uu, a)),
            (beta, w, lam, x[..., 0], x[..., 1], x[..., 2]), repeat, lanes),
        "residuals": _best(lambda *a: jax.vmap(lambda *b: problem.residuals(*b, numerics))(*a),
                           (u, beta, w, lam), repeat, lanes),
        "linearize": _best(lambda *a: jax.vmap(lambda *b: _linearize(problem, *b, numerics))(*a),
                           (u, beta, w, lam), repeat, lanes),
    }
    r, J = jax.jit(jax.vmap(lambda *b: _linearize(problem, *b, numerics)))(u, beta, w, lam)
    times["damped_step"] = _best(jax.vmap(lambda J_, r_: damped_step(J_, r_, 1e-3)), (J, r), repeat, lanes)
    times["lm_lane_step"] = _best(lambda *a: _lm_round(*a, problem=problem, lm=lm), setup["round_args"],
                                  max(repeat // 6, 3), lanes) / steps
    return {"us_per_lane": {k: v * 1e6 for k, v in times.items()}, "lanes": lanes, "lm_steps": steps,
            "repeat": repeat, "qfdjax_path": os.path.dirname(qfdjax.__file__)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the numbers to this JSON file")
    parser.add_argument("--lanes", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    result = measure(lanes=args.lanes, repeat=args.repeat)
    result.update(when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  machine=f"{platform.machine()}, {os.cpu_count()} cores")
    for name, value in result["us_per_lane"].items():
        print(f"{name:32s} {value:7.3f} us per lane")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=1)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
