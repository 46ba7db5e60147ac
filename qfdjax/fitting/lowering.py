"""Every kernel the commands run, lowered for another platform (CUDA) on this machine: GPU readiness without a GPU.

Why: no kernel had ever been lowered for a GPU.  A CPU-only construct hiding in one
-- a LAPACK custom call, a host callback, a primitive without a CUDA lowering --
would surface only on the first lent GPU, in the minutes it is lent.  `jax.export`
lowers for any platform on any machine, so each kernel is recorded as the commands
call it (fits with every method, both numerics, the g term, a toy batch, the chi^2
screen, the energies), exported with `platforms=("cuda",)`, and its StableHLO is
read for custom calls.  XLA's cost analysis of the CPU lowering (flops, bytes) gives
a roofline projection for one H100 / H200 -- labelled as a projection, never a
measurement.
"""

from __future__ import annotations

from typing import Any
import re
import time

import numpy as np

# Custom-call targets that exist only on a CPU backend, and any host callback: none may be in a GPU kernel.
CPU_ONLY_MARKERS = ("lapack_", "ducc_", "cpu_callback", "xla_python_cpu", "xla_ffi_python_cpu")
HOST_CALLBACK_MARKERS = ("callback",)
# fp64 peak (non-tensor-core) and memory bandwidth, from NVIDIA's data sheets (SXM parts).
GPUS = {"H100": (34e12, 3.35e12), "H200": (34e12, 4.8e12)}


def _custom_calls(text: str) -> list[str]:
    targets = set(re.findall(r"custom_call @([\w.$-]+)", text))
    targets |= set(re.findall(r'call_target_name = "([^"]+)"', text))
    return sorted(targets)


def record_kernels() -> list[tuple]:
    """(name, fn, args) of every kernel a representative set of commands calls, one per distinct key."""
    from ..model.quadrature import SeedGridSpec
    from . import compiled
    from .fit import FitConfig, fit_points
    from .kernel import chi2_at
    from .observables import build_likelihood
    from .params import ParameterSpace
    from .problem import Problem, make_numerics

    recorded: list = []
    compiled.RECORDER = recorded
    try:
        one = (np.array([3.1]), np.array([0.015]), np.array([0.00211]))
        many = tuple(np.full(16, v) for v in (3.1, 0.015, 0.00211))
        fit_points(*one, config=FitConfig(starts=8))                                   # a single fit
        fit_points(*many, config=FitConfig(starts=8))                                  # a scan chunk's buckets
        fit_points(*one, config=FitConfig(method="de", de_maxiter=3, de_popsize=2))    # differential evolution
        fit_points(*one, numerics="reference", config=FitConfig(starts=2))             # the seed's numerics
        space = ParameterSpace.seed()
        likelihood = build_likelihood(space.leptons, ("mass", "g_tau"))
        fit_points(*one, likelihood=likelihood, config=FitConfig(starts=2))            # the g term
        data = np.repeat(likelihood.data()[None], 4, axis=0) * (1 + 1e-4 * np.arange(4))[:, None]
        fit_points(*(np.repeat(v, 4) for v in one), likelihood=likelihood, config=FitConfig(starts=2),
                   data=data)                                                          # toys: per-lane data
        problem = Problem.build(space, build_likelihood(space.leptons), compiled_profile())
        chi2_at(problem, make_numerics("exact", many[1], SeedGridSpec()), many[0], many[1], many[2], np.full((16, 9), 0.5))
    finally:
        compiled.RECORDER = None
    seen, unique = set(), []
    for name, fn, args in recorded:
        key = compiled._split(name, args)[0]
        if key not in seen:
            seen.add(key)
            unique.append((name, fn, args))
    return unique


def compiled_profile():
    from ..model.profiles import BoundaryLayer

    return BoundaryLayer()


def _energy_kernels() -> list[tuple]:
    """The energy command's kernel for both numerics (it jits directly, not through compiled.py)."""
    from ..model.energy import energy_table
    from ..model.numerics import Exact, reference_numerics

    cols = [np.full(64, v) for v in (3.1, 0.015, 0.00211, 0.5, 0.1, 0.9)]
    out = []
    for label, numerics in (("energies_exact", Exact(r_min=np.full(64, 0.01), r_max=np.full(64, 10.0))),
                            ("energies_reference", reference_numerics(np.full(64, 0.015)))):
        out.append((label, energy_table, (numerics, *cols)))
    return out


def lower_kernel(name: str, fn, args, platform: str = "cuda") -> dict:
    """Export one kernel for `platform`; its custom calls, cost analysis and roofline projection."""
    import jax

    from . import compiled

    _, leaves, mask, treedef, dynamic = compiled._split(name, args)
    flat = compiled.flat_function(fn, leaves, mask, treedef)
    specs = compiled._specs(dynamic)
    numerics = [type(a).__name__ for a in args if type(a).__name__ in ("Exact", "Reference")]
    row: dict[str, Any] = {"name": name, "numerics": numerics[0] if numerics else None, "batch": compiled._batch(specs),
           "platforms": [platform], "lowered": False,
           "custom_calls": [], "cpu_only_calls": [], "host_callbacks": [], "error": None}
    try:
        exported = jax.export.export(jax.jit(flat), platforms=(platform,))(*specs)
        text = exported.mlir_module()
        calls = _custom_calls(text)
        row.update(lowered=True, custom_calls=calls,
                   cpu_only_calls=[c for c in calls if any(m in c for m in CPU_ONLY_MARKERS)],
                   host_callbacks=[c for c in calls if any(m in c for m in HOST_CALLBACK_MARKERS)])
    except Exception as err:  # noqa: BLE001 - a kernel that does not lower is the finding, reported by name
        row["error"] = f"{type(err).__name__}: {str(err)[:300]}"
    try:
        cost = jax.jit(flat).lower(*specs).cost_analysis() or {}
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        flops, nbytes = float(cost.get("flops", np.nan)), float(cost.get("bytes accessed", np.nan))
    except Exception:  # noqa: BLE001 - cost analysis is informative only
        flops, nbytes = np.nan, np.nan
    row["flops"], row["bytes"] = flops, nbytes
    row["projected_s"] = {gpu: (max(flops / peak, nbytes / bandwidth) if np.isfinite(flops) else None)
                          for gpu, (peak, bandwidth) in GPUS.items()}
    return row


def lower_all(platform: str = "cuda") -> dict:
    """Every recorded kernel lowered for `platform`: {"kernels": [...], "ok": all lowered and clean}."""
    t0 = time.perf_counter()
    kernels = [lower_kernel(name, fn, args, platform) for name, fn, args in record_kernels() + _energy_kernels()]
    ok = all(k["lowered"] and not k["cpu_only_calls"] and not k["host_callbacks"] for k in kernels)
    return {"platform": platform, "ok": ok, "kernels": kernels, "seconds": time.perf_counter() - t0,
            "projection_note": "projected_s = max(flops / fp64 peak, bytes / bandwidth) from XLA's cost analysis "
                               "of the CPU lowering: a roofline projection, not a measurement; XLA counts a while "
                               "loop's body once, so LM rounds and DE are per iteration, not per call"}
