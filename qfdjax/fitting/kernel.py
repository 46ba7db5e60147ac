"""The compiled fit kernels: every start of every point of a batch in one call.

Gradient fits run as flat lanes, one (point, start) pair each, vmapped; a fit
of one point with 8 starts, a 64-point scan chunk and a benchmark batch all
use the same kernel, padded to a lane bucket (see compiled.py).
Differential evolution runs one instance per point.  Host code here is NumPy:
it expands points into lanes, pads, and cuts the padding off again.
"""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..model.numerics import AbstractNumerics
from ..runtime import spending
from .compiled import QUICK_COMPILE_BATCH, bucket, call_compiled, kernel_ready, lanes_shaped, prefetch, quick_compiled
from .lanes import LANE_BASE, ready_size, repack_floor, runnable_parts
from .optimize import DEConfig, LMConfig, LMState, differential_evolution, lm_steps, result_at
from .optimize.lm import CHI2_SCALE_FLOOR, projected_gradient_norm
from .optimize.starts import latin_hypercube_points, point_hash
from .params import ParameterSpace
from .problem import Problem
from .sharding import shard_points

# Smallest lane bucket: one point's default 8 starts.
MIN_LANES = 8
# Smallest batch of a run of more lanes than that (toys, scans, FC): its tail rounds' few running lanes
# cost about the same in 64 lanes as in 16 (fixed per-step cost), and each smaller size was one more
# kernel to compile cold (~3.7 s) and to load warm (~0.14 s).
MIN_MANY_LANES = 64
# LM steps per round before running lanes are re-packed, below REPACK_FLOOR_LANES (median start ~40, slowest ~90).
LM_ROUND_STEPS = 24
# A batch of at least this many lanes runs until re-packing its running lanes would save an eighth of it
# (`repack_floor`), however many steps that takes: lanes end unevenly (a 64 x 64 scan's starts take 4-8
# or 25-50 steps), and a fixed-length round kept a batch of 512 running for a few dozen lanes.  Batches
# this size and up are the ones scans load anyway; below it the fixed rounds stay (each smaller batch
# would be one more kernel to load).
REPACK_FLOOR_LANES = 256
SOLUTION_FIELDS = ("u_starts", "chi2_starts", "pgrad_starts", "steps_starts", "done_starts",
                   "de_chi2", "de_generations", "de_converged")


def run_points(name: str, body, mesh, numerics: AbstractNumerics, point_args: tuple, shared: tuple) -> dict:
    """body(numerics, *point_args, *shared) over the points axis: exported on one device, sharded on several."""
    if mesh is None:
        return call_compiled(name, _apply, body, point_args, numerics, shared)
    # Traced and compiled on first use: that first call's compile counts as device time here.
    with spending("device"):
        return jax.block_until_ready(_sharded(body, mesh, numerics, point_args, shared))


def _apply(body, point_args, numerics, shared):
    # Point arguments first: the first array a kernel takes is its batch of points
    # (compiled.py reads the batch size from it; a seed-grid table's is its nodes).
    return body(numerics, *point_args, *shared)


@eqx.filter_jit
def _sharded(body, mesh, numerics, point_args, shared):
    # Several devices: traced per process (an exported artifact would be tied to
    # one device count, and shard_map inside jax.export is not yet reliable here).
    return shard_points(lambda num, *args: body(num, *args, *shared), mesh, numerics, *point_args)


def padded_size(n: int, smallest: int, mesh, base: int = 4) -> int:
    size = bucket(n, smallest, base)
    if mesh is not None:
        devices = mesh.devices.size
        size = math.ceil(size / devices) * devices
    return size


def pad_index(n: int, size: int) -> np.ndarray:
    """Indices 0..n-1, then the last one repeated: padding lanes redo a real input."""
    return np.minimum(np.arange(size), n - 1)


def run_padded(name: str, body, mesh, numerics: AbstractNumerics, point_args: tuple, shared: tuple,
               smallest: int = 1, only_prepare: bool = False) -> dict:
    """run_points on a batch padded to its bucket, with the padding cut off the host results.

    `numerics` and every array of `point_args` have one entry per point.
    only_prepare: start getting the kernel ready in the background instead (one device only).
    """
    n = len(point_args[0])
    size = padded_size(n, smallest, mesh)
    if mesh is None and not only_prepare:
        size = _ready_size(name, body, numerics, point_args, shared, size)
    idx = pad_index(n, size)
    args = tuple(np.asarray(a)[idx] for a in point_args)
    if only_prepare:
        if mesh is None:
            prefetch(name, _apply, body, args, numerics.select(idx), shared)
        return {}
    out = run_points(name, body, mesh, numerics.select(idx), args, shared)
    return {k: np.asarray(v)[:n] for k, v in out.items()}


def _ready_size(name, body, numerics, point_args, shared, size: int) -> int:
    """`size`, or a bigger bucket whose kernel needs no compile (`lanes.ready_size`)."""
    if quick_compiled(name, size):  # computes differently from the bigger kernels: never replaced
        return size
    one = np.zeros(1, np.int64)
    lane = tuple(np.asarray(a)[one] for a in point_args)
    return ready_size(size, lambda bigger: kernel_ready(name, _apply, body, lanes_shaped(lane, bigger), lanes_shaped(
        numerics.select(one), bigger, numerics.point_axes()), shared))


@eqx.filter_jit
def _linearize(problem: Problem, u, beta, w, lam, numerics):
    # Jitted so that the LM round traces the model once: its two linearisations
    # (the start of a round, every trial step) share one traced and lowered
    # function.  With the loop's final (r, J) reused for the projected gradient,
    # tracing the 8-lane round went from 2.75 s to 0.66 s (2 cores).
    return problem.residuals_and_jacobian(u, beta, w, lam, numerics)


def point_data(problem: Problem, count: int, data=None) -> np.ndarray:
    """Per point, the data its fit compares with: the likelihood's own, or given pseudo-data (count, k)."""
    own = problem.likelihood.data()
    if data is None:
        return np.broadcast_to(own, (count, own.size)).copy()
    data = np.asarray(data, dtype=np.float64)
    if data.shape != (count, own.size):
        raise ValueError(f"data has shape {data.shape}: need ({count}, {own.size})")
    return data


def _lm_round(numerics, beta, w, lam, data, u, chi2, damping, step, done, stalls, r, J, until, running_above,
              chi2_floor, problem: Problem, lm: LMConfig) -> dict:
    """Advance every lane's LM run to step `until` (or its end), while more than `running_above` lanes of
    the batch are still running (-1: no such condition); NaN chi2 marks a fresh start, and (r, J) are a
    resumed run's residuals and Jacobian at u, as the round before returned them (see `lm_steps`).

    `data`: each lane's own data (the likelihood's, or a pseudo-experiment's): masses and bounds
    are array inputs, so a toy is one more lane of this kernel.  `running_above` is per lane (every
    lane the same value) so that a sharded batch splits it like any other lane input; so is `chi2_floor`."""
    fixed = problem.box.fixed

    def one(num, b, ww, l, d, u, chi2, damping, step, done, stalls, r, J, until, above, floor):
        mine = problem.with_data(d)
        linearize = lambda v: _linearize(mine, v, b, ww, l, num)  # noqa: E731
        count = lambda flag: jax.lax.psum(flag.astype(jnp.int32), "lanes")  # noqa: E731
        state, r, J = lm_steps(linearize, LMState(u, chi2, damping, step, done, stalls), fixed, lm, until,
                               linearized=(r, J), count_lanes=count, running_above=above, chi2_floor=floor)
        result = result_at(state, r, J, fixed)
        return {"u": state.u, "chi2": state.chi2, "damping": state.damping, "step": state.step,
                "done": state.done, "stalls": state.stalls, "pgrad": result.projected_gradient, "r": r, "J": J}

    lanes = (beta, w, lam, data, u, chi2, damping, step, done, stalls, r, J, until, running_above, chi2_floor)
    return eqx.filter_vmap(one, in_axes=(numerics.point_axes(),) + (0,) * 15, axis_name="lanes")(numerics, *lanes)


def run_lm_lanes(problem: Problem, numerics: AbstractNumerics, lane_point, beta, w, lam, starts,
                 lm: LMConfig, mesh=None, round_steps: int = LM_ROUND_STEPS, min_lanes: int = MIN_LANES,
                 data=None, stop_at_rounding: bool = False) -> dict:
    """LM from every lane's start, in rounds: `round_steps` steps in batches below REPACK_FLOOR_LANES, and in
    bigger batches until re-packing their running lanes saves an eighth of the batch (`repack_floor`).

    After each round the lanes still running are packed into batches of a few sizes (`lanes.py`), so a
    chunk's finished starts stop costing work (about half of all start-iterations were idle waiting for the
    slowest start when every lane ran to the end in one call).  A lane's run is the same sequence of steps
    however it is cut into rounds (each round hands the next its residuals and Jacobian), and on CPU with
    qfdjax's XLA settings whatever batch it runs in (bitwise; XLA's YNNPACK fusions made the last bits depend
    on the batch size: 349 of the 16 x 10 scan's 1280 starts took other step counts in chunks of 16 and of
    64 points).  stop_at_rounding: a lane also stops below its data's chi^2 rounding floor
    (`Likelihood.chi2_rounding_floor`), where exact fits need be no closer to zero.
    """
    lanes = len(lane_point)
    if lanes > QUICK_COMPILE_BATCH:
        # Only a single fit runs in the quick-compiled kernels: a batch's leftover lanes computed there
        # would make the numbers of toys and scans depend on how their lanes were batched.
        min_lanes = max(min_lanes, MIN_MANY_LANES)
    data = point_data(problem, len(beta), data)
    u, residuals = np.array(starts, dtype=np.float64), problem.likelihood.residual_count()
    state: dict[str, np.ndarray] = {
        "chi2_floor": problem.likelihood.chi2_rounding_floor(data)[lane_point] if stop_at_rounding else np.zeros(lanes),
        "u": u, "chi2": np.full(lanes, np.nan), "damping": np.full(lanes, lm.initial_damping),
        "step": np.zeros(lanes, np.int64), "done": np.zeros(lanes, bool), "stalls": np.zeros(lanes, np.int64),
        "pgrad": np.full(lanes, np.nan), "r": np.full((lanes, residuals), np.nan),
        "J": np.full((lanes, residuals, u.shape[1]), np.nan)}
    active = np.arange(lanes)

    @functools.cache
    def shaped(size: int) -> tuple:
        # The kernel's arguments for `size` lanes as shapes, from one lane's: enough to key or load it.
        one = active[:1]
        return (lanes_shaped(_round_args(state, one, beta, w, lam, data, lane_point, round_steps), size),
                lanes_shaped(numerics.select(lane_point[one]), size, numerics.point_axes()), (problem, lm))

    known_ready: set[int] = set()

    def ready(size: int) -> bool:
        if size not in known_ready and kernel_ready("lm_round", _apply, _lm_round, *shaped(size)):
            known_ready.add(size)
        return size in known_ready

    while active.size:
        if mesh is None:
            parts, missing = runnable_parts(active.size, min_lanes, lanes, ready, keep=QUICK_COMPILE_BATCH)
            # Compiled meanwhile (cancelled at exit if not started), and the next size down, which the
            # next rounds most likely use, loaded meanwhile: asked every round, each is loaded once.
            for size in missing:
                prefetch("lm_round", _apply, _lm_round, *shaped(size), guessed=True)
            if parts[0] // LANE_BASE >= min_lanes:
                prefetch("lm_round", _apply, _lm_round, *shaped(parts[0] // LANE_BASE))
        else:
            parts = [padded_size(active.size, min_lanes, mesh, base=2)]
        start = 0
        for size in parts:
            mine = active[start:start + size]
            idx = mine[pad_index(mine.size, size)]
            out = run_points("lm_round", _lm_round, mesh, numerics.select(lane_point[idx]),
                             _round_args(state, idx, beta, w, lam, data, lane_point, round_steps,
                                         floor=repack_floor(size, min_lanes)
                                         if mesh is None and size >= REPACK_FLOOR_LANES else None,
                                         max_steps=lm.max_steps),
                             (problem, lm))
            for key, value in out.items():
                state[key][mine] = np.asarray(value)[:mine.size]
            start += size
        running = ~state["done"][active] & (state["step"][active] < lm.max_steps)
        active = active[running]
    return state


def _round_args(state, idx, beta, w, lam, data, lane_point, round_steps, floor=None, max_steps=0) -> tuple:
    """The lm_round kernel's lane inputs: a fixed round of `round_steps` steps, or, with `floor`, until at
    most `floor` lanes of the batch are still running."""
    points = lane_point[idx]
    fields = tuple(state[k][idx] for k in ("u", "chi2", "damping", "step", "done", "stalls", "r", "J"))
    until = state["step"][idx] + round_steps if floor is None else np.full(idx.size, max_steps, np.int64)
    above = np.full(idx.size, -1 if floor is None else floor, np.int64)
    return (beta[points], w[points], lam[points], data[points]) + fields + (until, above, state["chi2_floor"][idx])


def _de_points(numerics, beta, w, lam, data, keys, base: Problem, de: DEConfig) -> dict:
    n = base.box.lower.shape[0]
    fixed = base.box.fixed

    def one(num, b, ww, l, d, key):
        problem = base.with_data(d)
        residuals = lambda u: problem.residuals(u, b, ww, l, num)  # noqa: E731
        result = differential_evolution(lambda u: jnp.sum(residuals(u) ** 2), n, key, fixed, de)
        r, J = problem.residuals_and_jacobian(result.u, b, ww, l, num)
        g = 2.0 * J.T @ r
        pg = projected_gradient_norm(result.u, g / jnp.maximum(result.chi2, CHI2_SCALE_FLOOR), fixed)
        return {"u": result.u, "chi2": result.chi2, "generations": result.generations,
                "converged": result.converged, "pgrad": pg}

    return eqx.filter_vmap(one, in_axes=(numerics.point_axes(), 0, 0, 0, 0, 0))(numerics, beta, w, lam, data, keys)


def solve_points(problem: Problem, numerics: AbstractNumerics, beta, w, lam, starts, keys,
                 method: str, lm: LMConfig, de: DEConfig, mesh=None, min_lanes: int = MIN_LANES,
                 data=None, stop_at_rounding: bool = False) -> dict:
    """Fit P points: starts (P, S, n) in unit coordinates, keys (P, 2) uint32 for DE.

    data (P, k): each point's own data (pseudo-experiments); default the likelihood's.  stop_at_rounding: see
    `run_lm_lanes`.

    Returns host arrays named by SOLUTION_FIELDS, per point and start.  With a
    device mesh, points are split over its devices (see sharding.py).
    """
    beta, w, lam = (np.asarray(v, dtype=np.float64) for v in (beta, w, lam))
    starts = np.array(starts, dtype=np.float64)
    P, S, n = starts.shape
    data = point_data(problem, P, data)
    if method in ("de", "de+gradient"):
        out = run_padded("de", _de_points, mesh, numerics, (beta, w, lam, data, keys), (problem, de))
        de_info = {"de_chi2": out["chi2"], "de_generations": out["generations"], "de_converged": out["converged"]}
        if method == "de":
            return {"u_starts": out["u"][:, None], "chi2_starts": out["chi2"][:, None],
                    "pgrad_starts": out["pgrad"][:, None], "steps_starts": out["generations"][:, None],
                    "done_starts": out["converged"][:, None], **de_info}
        starts[:, 0] = out["u"]
    else:
        de_info = {"de_chi2": np.full(P, np.nan), "de_generations": np.zeros(P, np.int32),
                   "de_converged": np.zeros(P, bool)}
    lanes = P * S
    out = run_lm_lanes(problem, numerics, np.repeat(np.arange(P), S), beta, w, lam, starts.reshape(lanes, n),
                       lm, mesh, min_lanes=min_lanes, data=data, stop_at_rounding=stop_at_rounding)
    per_point = lambda a: np.asarray(a).reshape((P, S) + np.shape(a)[1:])  # noqa: E731
    return {"u_starts": per_point(out["u"]), "chi2_starts": per_point(out["chi2"]),
            "pgrad_starts": per_point(out["pgrad"]), "steps_starts": per_point(out["step"]),
            "done_starts": per_point(out["done"]), **de_info}


def _chi2_lanes(numerics, beta, w, lam, data, u, problem: Problem) -> dict:
    def one(num, b, ww, l, d, uu):
        return jnp.sum(problem.with_data(d).residuals(uu, b, ww, l, num) ** 2)

    return {"chi2": eqx.filter_vmap(one, in_axes=(numerics.point_axes(), 0, 0, 0, 0, 0))(numerics, beta, w, lam,
                                                                                           data, u)}


def chi2_at(problem: Problem, numerics: AbstractNumerics, beta, w, lam, u, mesh=None, data=None) -> np.ndarray:
    """chi^2 of unit-box points u (Q, n) at points (Q,): one batched evaluation, no fitting."""
    data = point_data(problem, len(beta), data)
    return run_padded("chi2", _chi2_lanes, mesh, numerics, (beta, w, lam, data, u), (problem,), MIN_LANES)["chi2"]


def initial_starts(space: ParameterSpace, count: int, point_ids, seed: int):
    """Latin-hypercube starts (P, S, n) and DE keys (P, 2) for the given global point ids.

    Each point's randomness depends only on (seed, point id), so a scan gives
    the same answer however it is chunked, sharded or resumed.
    """
    point_ids = np.asarray(point_ids)
    starts = latin_hypercube_points(seed, point_ids, max(count, 1), space.size)
    starts[..., space.fixed] = 0.0
    keys = (point_hash(seed, point_ids, 2, (2,)) >> np.uint64(32)).astype(np.uint32)
    return starts, keys
