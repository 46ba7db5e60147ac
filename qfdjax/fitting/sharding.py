"""Splitting independent points over devices.

Grid points never talk to each other, so each device gets its own slice of
points and runs the whole fit on it (`jax.shard_map`): no collectives, and every
device's while-loops stop on their own.  Letting the SPMD partitioner split a
vmapped while-loop instead ties all devices to one loop condition and needs
collectives inside it.
"""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np

P = jax.sharding.PartitionSpec


def points_spec(x):
    """Shard the leading (points) axis, replicate the rest."""
    return P("points", *([None] * (np.ndim(x) - 1)))


def shard_points(fn, mesh, numerics, *point_args):
    """fn(numerics, *point_args), with points split over `mesh` (or directly when mesh is None).

    Call inside jit.  `numerics.point_axes()` says which of its arrays are per
    point (sharded) and which are shared tables (replicated).
    """
    if mesh is None:
        return fn(numerics, *point_args)
    arrays, static = eqx.partition(numerics, eqx.is_array)
    axes = numerics.point_axes()
    array_specs = jax.tree_util.tree_map(
        lambda leaf, axis: None if leaf is None else (P("points") if axis == 0 else P()),
        arrays, axes, is_leaf=lambda x: x is None,
    )

    def local(local_arrays, *args):
        return fn(eqx.combine(local_arrays, static), *args)

    out_shape = jax.eval_shape(lambda *a: fn(numerics, *a), *point_args)
    out_specs = jax.tree_util.tree_map(points_spec, out_shape)
    in_specs = (array_specs,) + tuple(points_spec(a) for a in point_args)
    return jax.shard_map(local, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)(
        arrays, *point_args)
