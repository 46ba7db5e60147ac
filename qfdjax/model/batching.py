"""Lanes on the last axis: a batching rule for the LM kernel's small per-lane computations.

`jax.vmap` puts the mapped axis first, so inside a vmapped fit every per-lane quantity is a
(lanes, small...) array: a lepton's three energies are (lanes, 3), a Jacobian (lanes, 3, 9).  XLA:CPU
then reduces over the small trailing axes lane by lane -- tiny batched dots and strided sums that
vectorise over 3 or 9 entries, not over the lanes.  `lanes_last(fn)` keeps `fn`'s meaning under
vmap but runs it with the mapped axis last, where every sum over the small axes is an elementwise
add across lanes (measured on the LM lane-step, 2 cores: `benchmarks/README.md`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap


def lanes_last(fn):
    """`fn(*args)`, a function written for lanes on the last axis of every argument and output, as a
    function of one lane (no lanes axis), whose vmap runs `fn` with the mapped axis last.

    `fn` must broadcast a length-1 lanes axis: one lane alone is passed as arrays with a trailing axis
    of length 1, and so are the arguments a vmap does not map.  Arguments may be pytrees of arrays.
    """

    def one_lane(*args):
        out = fn(*jax.tree_util.tree_map(lambda x: jnp.asarray(x)[..., None], args))
        return jax.tree_util.tree_map(lambda y: y[..., 0], out)

    wrapped = custom_vmap(one_lane)

    @wrapped.def_vmap
    def _rule(axis_size, in_batched, *args):
        moved = jax.tree_util.tree_map(lambda mapped, x: jnp.moveaxis(x, 0, -1) if mapped else jnp.asarray(x)[..., None],
                                       list(in_batched), list(args))
        out = fn(*moved)
        # An output that no mapped argument reaches still has length 1 there.
        out = jax.tree_util.tree_map(lambda y: jnp.moveaxis(jnp.broadcast_to(y, y.shape[:-1] + (axis_size,)), -1, 0),
                                     out)
        return out, jax.tree_util.tree_map(lambda _: True, out)

    return wrapped
