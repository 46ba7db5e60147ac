"""Seeded space-filling starts on the unit box.

`latin_hypercube` draws inside a JAX kernel (differential evolution's initial
population).  `latin_hypercube_points` draws the multistart starts of many grid
points on the host in NumPy: each point's numbers come from a counter-based
hash of (seed, point id, stream, index), so they depend on nothing else —
not on chunking, sharding, resuming or the order points are fitted in — and
no kernel has to be compiled to draw them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def latin_hypercube(key, count: int, dim: int):
    """`count` points in [0, 1]^dim, one per stratum in every coordinate."""
    perm_keys = jax.random.split(key, dim + 1)
    strata = jnp.stack([jax.random.permutation(k, count) for k in perm_keys[:dim]], -1)
    jitter = jax.random.uniform(perm_keys[dim], (count, dim))
    return (strata + jitter) / count


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mixer."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def point_hash(seed: int, point_ids, stream: int, shape: tuple[int, ...]) -> np.ndarray:
    """uint64 hashes of shape (points,) + shape, a function of (seed, point id, stream, index) only."""
    ids = np.asarray(point_ids, dtype=np.uint64).reshape((-1,) + (1,) * len(shape))
    index = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.uint64).reshape(shape)
    base = _splitmix64(np.asarray([seed], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        return _splitmix64(_splitmix64(_splitmix64(base ^ ids) + np.uint64(stream)) ^ index[None])


def uniform_for_points(seed: int, point_ids, stream: int, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform doubles in [0, 1) with 53 random bits each."""
    return (point_hash(seed, point_ids, stream, shape) >> np.uint64(11)) * (1.0 / 2.0**53)


def latin_hypercube_points(seed: int, point_ids, count: int, dim: int) -> np.ndarray:
    """(points, count, dim) Latin-hypercube starts, each point's from its own id."""
    order = np.argsort(uniform_for_points(seed, point_ids, 0, (dim, count)), axis=-1)
    strata = np.swapaxes(order, 1, 2)
    jitter = uniform_for_points(seed, point_ids, 1, (count, dim))
    return (strata + jitter) / count
