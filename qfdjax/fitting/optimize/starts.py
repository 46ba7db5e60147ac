"""Seeded space-filling starts on the unit box."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def latin_hypercube(key, count: int, dim: int):
    """`count` points in [0, 1]^dim, one per stratum in every coordinate."""
    perm_keys = jax.random.split(key, dim + 1)
    strata = jnp.stack([jax.random.permutation(k, count) for k in perm_keys[:dim]], -1)
    jitter = jax.random.uniform(perm_keys[dim], (count, dim))
    return (strata + jitter) / count
