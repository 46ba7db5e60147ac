"""`lanes_last`: a vmapped function run with its lanes on the last axis means what it means lane by lane."""

import jax
import jax.numpy as jnp
import numpy as np

from qfdjax.model.batching import lanes_last


@lanes_last
def _weighted_norms(x, pair, scale):
    """Per lane: x (3, 4) -> (|column|^2 * scale, sum of the pair's product); lanes last in every array."""
    a, b = pair
    return jnp.sum(x * x, 0) * scale, jnp.sum(a * b, 0)


def _one_lane(x, pair, scale):
    a, b = pair
    return np.sum(x * x, 0) * scale, np.sum(a * b, 0)


def test_vmapped_equals_lane_by_lane_with_pytrees_unmapped_and_nested_axes():
    rng = np.random.default_rng(0)
    x, a, b, scale = rng.normal(size=(5, 6, 3, 4)), rng.normal(size=(5, 6, 2)), rng.normal(size=(5, 6, 2)), 1.5
    want = [[_one_lane(x[i, j], (a[i, j], b[i, j]), scale) for j in range(6)] for i in range(5)]
    nested = jax.jit(jax.vmap(jax.vmap(_weighted_norms, in_axes=(0, 0, None)), in_axes=(0, 0, None)))(x, (a, b), scale)
    # The pair's second member unmapped: it reaches every lane as it is.
    shared = jax.vmap(_weighted_norms, in_axes=(0, (0, None), None))(x[0], (a[0], b[0, 0]), scale)
    for i in range(5):
        for j in range(6):
            np.testing.assert_allclose(nested[0][i, j], want[i][j][0], rtol=1e-14)
            np.testing.assert_allclose(nested[1][i, j], want[i][j][1], rtol=1e-14, atol=1e-15)
    for j in range(6):
        np.testing.assert_allclose(shared[1][j], np.sum(a[0, j] * b[0, 0]), rtol=1e-14, atol=1e-15)
    # Called outside vmap it is the one-lane function.
    single = _weighted_norms(x[0, 0], (a[0, 0], b[0, 0]), scale)
    np.testing.assert_allclose(single[0], want[0][0][0], rtol=1e-14)


def test_an_output_no_mapped_argument_reaches_is_still_one_per_lane():
    only_scale = lanes_last(lambda x, scale: (x * 0.0 + 1.0, scale * 2.0))
    ones, doubled = jax.vmap(only_scale, in_axes=(0, None))(jnp.arange(4.0), jnp.asarray(3.0))
    assert doubled.shape == (4,) and np.all(np.asarray(doubled) == 6.0)
    assert np.all(np.asarray(ones) == 1.0)


def test_energies_and_derivatives_vmapped_over_lanes_equal_the_unmapped_call():
    """The LM's linearisation calls them vmapped (lanes last inside); the direct call runs one batch: the
    same numbers to rounding, with the numerics' r_min and r_max per point or shared."""
    from qfdjax.model.energy import lepton_energies_and_derivatives
    from qfdjax.model.numerics import Exact

    rng = np.random.default_rng(1)
    n = 64
    beta, w, lam = rng.uniform(2.9, 3.3, n), rng.uniform(0.005, 0.05, n), rng.uniform(0.002, 0.02, n)
    R_c, U, A = rng.uniform(0.01, 1.2, (n, 3)), rng.uniform(0.01, 0.2, (n, 3)), rng.uniform(0.7, 1.0, (n, 3))
    r_min, r_max = rng.uniform(0.0, 0.02, n), rng.uniform(0.9, 1.5, n)
    per_point = Exact(r_min=r_min[:, None], r_max=r_max[:, None])
    direct = lepton_energies_and_derivatives(beta[:, None], w[:, None], lam[:, None], R_c, U, A, numerics=per_point)

    def one(b, ww, lm, rc, u, a, lo, hi):
        return lepton_energies_and_derivatives(b, ww, lm, rc, u, a, numerics=Exact(r_min=lo, r_max=hi))

    mapped = jax.jit(jax.vmap(one))(beta, w, lam, R_c, U, A, r_min, r_max)
    for got, want in zip(jax.tree_util.tree_leaves(mapped), jax.tree_util.tree_leaves(direct), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-13,
                                   atol=1e-15 * float(np.max(np.abs(np.asarray(want)))))
    shared = jax.jit(jax.vmap(lambda *a: lepton_energies_and_derivatives(*a, numerics=Exact())))(beta, w, lam, R_c, U, A)
    want = lepton_energies_and_derivatives(beta[:, None], w[:, None], lam[:, None], R_c, U, A, numerics=Exact())
    for got, ref in zip(jax.tree_util.tree_leaves(shared), jax.tree_util.tree_leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-13,
                                   atol=1e-15 * float(np.max(np.abs(np.asarray(ref)))))


def test_the_energies_jet_differentiates_in_forward_mode_and_agrees_with_itself():
    """The batching rule supports forward mode: the jvp of the jet's energies in R_c is the jet's own R_c
    derivative (vmapped too, as a fit's lanes run it)."""
    from qfdjax.model.energy import lepton_energies_and_derivatives

    def total_and_slope(R_c):
        E, (d_R_c, _, _) = lepton_energies_and_derivatives(3.1, 0.015, 0.0065, R_c, 0.1, 0.9)
        return E.total, d_R_c.total

    R_c = jnp.linspace(0.2, 1.1, 8)
    (total, slope), (d_total, _) = jax.vmap(lambda r: jax.jvp(total_and_slope, (r,), (jnp.ones_like(r),)))(R_c)
    np.testing.assert_allclose(np.asarray(d_total), np.asarray(slope), rtol=1e-12)
