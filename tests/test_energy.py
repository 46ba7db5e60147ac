"""Energies against the seed's reference numbers, the NumPy oracle, and calculus."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qfdjax
from qfdjax import Exact, lepton_energies, reference_numerics
from qfdjax.model.quadrature import SeedGridSpec, seed_radial_grid, simpson_weights, gradient_stencil
from qfdjax.reference import seed_chi2, seed_energies

from .conftest import column

COMPONENTS = ("E_circ", "E_stab", "E_grad")
ARGS = ("beta", "w", "lam", "R_c", "U", "A")


def rel_err(got, want):
    got, want = np.asarray(got), np.asarray(want)
    return np.abs(got - want) / np.maximum(np.abs(want), 1e-300)


def test_float64_is_on():
    assert jax.config.jax_enable_x64
    e = lepton_energies(3.1, 0.015, 0.0065, 0.5, 0.1, 0.9)
    assert e.E_circ.dtype == jnp.float64


def test_exact_matches_converged_reference(energy_cases):
    args = [column(energy_cases, k) for k in ARGS]
    numerics = Exact(r_min=column(energy_cases, "r_min"), r_max=column(energy_cases, "r_max"))
    got = lepton_energies(*args, numerics=numerics)
    for name in COMPONENTS:
        want = np.array([c["exact"][name] for c in energy_cases])
        assert rel_err(getattr(got, name), want).max() <= 1e-10, name
    want = np.array([c["exact"]["E_total"] for c in energy_cases])
    assert rel_err(got.total, want).max() <= 1e-10


def test_reference_numerics_reproduce_seed(energy_cases):
    args = [column(energy_cases, k) for k in ARGS]
    numerics = reference_numerics(
        column(energy_cases, "w"), num_theta=column(energy_cases, "num_theta").astype(int),
        r_min=column(energy_cases, "r_min"), r_max=column(energy_cases, "r_max"),
    )
    got = lepton_energies(*args, numerics=numerics)
    for name in COMPONENTS:
        want = column(energy_cases, name)
        err = np.where(want == 0, np.abs(np.asarray(getattr(got, name))), rel_err(getattr(got, name), want))
        assert err.max() <= 1e-9, name
    assert rel_err(got.total, column(energy_cases, "E_total")).max() <= 1e-9


def test_seed_grid_sizes(reference_cases):
    for g in reference_cases["grids"]:
        r = seed_radial_grid(g["w"])
        assert r.size == g["num_r"]
        assert r.sum() == pytest.approx(g["r_sum"], rel=1e-12)
        assert np.diff(r).min() == pytest.approx(g["dr_min"], rel=1e-9)
    for c in reference_cases["energies"]:
        assert seed_radial_grid(c["w"]).size == c["num_r"]


def test_numpy_oracle_matches_seed(energy_cases):
    for c in energy_cases[:20]:
        spec = SeedGridSpec(num_theta=c["num_theta"], r_min=c["r_min"], r_max=c["r_max"])
        e = seed_energies(*(c[k] for k in ARGS), spec=spec)
        assert e.total == pytest.approx(c["E_total"], rel=1e-12)
        assert e.E_circ == pytest.approx(c["E_circ"], rel=1e-12)


def test_numpy_oracle_chi2(reference_cases):
    for o in reference_cases["objectives"][:4]:
        assert seed_chi2(o["params"], o["beta"], o["w"], o["lam"]) == pytest.approx(o["chi2"], rel=1e-10)


def test_jax_reference_equals_oracle_off_the_reference_cases():
    rng = np.random.default_rng(7)
    spec = SeedGridSpec(num_theta=13, dr_coarse=0.03, dr_fine_factor=30, r_max=6.0)
    for _ in range(5):
        beta, w, lam, R_c, U, A = (rng.uniform(2.9, 3.3), rng.uniform(0.005, 0.05), rng.uniform(0, 0.02),
                                   rng.uniform(0.05, 1.4), rng.uniform(0.01, 0.2), rng.uniform(0.7, 1))
        want = seed_energies(beta, w, lam, R_c, U, A, spec=spec)
        got = lepton_energies(beta, w, lam, R_c, U, A, numerics=reference_numerics(w, spec=spec))
        for name in COMPONENTS:
            assert float(getattr(got, name)) == pytest.approx(getattr(want, name), rel=1e-11, abs=1e-300)


def test_simpson_weights_match_scipy():
    scipy_integrate = pytest.importorskip("scipy.integrate")
    rng = np.random.default_rng(1)
    for n in (3, 4, 7, 10, 11, 50):
        x = np.sort(rng.uniform(0, 2, n))
        y = rng.normal(size=n)
        assert simpson_weights(x) @ y == pytest.approx(scipy_integrate.simpson(y, x=x), rel=1e-13)
        stencil = gradient_stencil(x)
        approx = stencil[:, 0] * np.r_[y[:1], y[:-1]] + stencil[:, 1] * y + stencil[:, 2] * np.r_[y[1:], y[-1:]]
        np.testing.assert_allclose(approx, np.gradient(y, x), rtol=1e-12, atol=1e-12)


def test_exact_is_converged():
    rng = np.random.default_rng(3)
    n = 200
    args = [rng.uniform(2.9, 3.3, n), rng.uniform(0.003, 0.06, n), rng.uniform(0, 0.03, n),
            rng.uniform(0.03, 1.5, n), rng.uniform(0.0, 0.2, n), rng.uniform(0, 1, n)]
    base = lepton_energies(*args)
    doubled = lepton_energies(*args, numerics=Exact(order_core=12, order_layer=22))
    for name in COMPONENTS:
        scale = np.abs(np.asarray(getattr(doubled, name))) + 1e-300
        assert (np.abs(np.asarray(getattr(base, name)) - np.asarray(getattr(doubled, name))) / scale).max() < 1e-12


def test_limits():
    # A -> 0: no density deficit, so no stability or gradient energy, and E_circ is
    # the bare Hill vortex, whose interior part is a polynomial integral.
    e = lepton_energies(3.1, 0.02, 0.01, 0.4, 0.1, 0.0)
    assert float(e.E_stab) == 0.0 and float(e.E_grad) == 0.0
    U, R, lo, hi = 0.1, 0.42, 0.01, 10.0
    k2 = (3 * U / R**2) ** 2
    interior = lambda r: k2 / 3 * (2 * R**4 * r**3 / 3 - 4 * R**2 * r**5 / 5 + 6 * r**7 / 7)
    exterior = lambda r: U**2 * (2 * r**3 / 3 - R**6 / (3 * r**3))
    want = np.pi * (interior(R) - interior(lo) + exterior(hi) - exterior(R))
    assert float(e.E_circ) == pytest.approx(want, rel=1e-13)
    # w -> 0 with A fixed: energies tend smoothly to the sharp-edged core.
    thin = [lepton_energies(3.1, w, 0.0, 0.4, 0.1, 0.9).E_stab for w in (1e-3, 1e-4, 1e-5)]
    assert abs(float(thin[1] - thin[2])) < abs(float(thin[0] - thin[1]))
    # U = 0: no flow at all.
    assert float(lepton_energies(3.1, 0.02, 0.01, 0.4, 0.0, 0.9).E_circ) == 0.0


def _scalar_energy(params):
    beta, w, lam, R_c, U, A = params
    return lepton_energies(beta, w, lam, R_c, U, A).total


@pytest.mark.parametrize("numerics", ["exact", "reference"])
def test_gradient_matches_finite_differences(numerics):
    x0 = np.array([3.1, 0.015, 0.0065, 0.62, 0.11, 0.87])
    if numerics == "exact":
        fn = _scalar_energy
        names = range(6)
    else:
        grid = reference_numerics(x0[1])
        # The seed grid is fixed for a given w, so differentiate in the others.
        fn = lambda p: lepton_energies(p[0], x0[1], p[2], p[3], p[4], p[5], numerics=grid).total
        names = [0, 2, 3, 4, 5]
    grad = np.asarray(jax.grad(fn)(jnp.asarray(x0)))
    for i in names:
        h = 1e-6 * max(abs(x0[i]), 1e-3)
        up, down = x0.copy(), x0.copy()
        up[i] += h
        down[i] -= h
        fd = (float(fn(jnp.asarray(up))) - float(fn(jnp.asarray(down)))) / (2 * h)
        assert grad[i] == pytest.approx(fd, rel=2e-6, abs=1e-8), i


def test_vmap_equals_loop_and_broadcasting():
    rng = np.random.default_rng(5)
    params = rng.uniform([2.9, 0.005, 0.0, 0.1, 0.02, 0.7], [3.3, 0.05, 0.02, 1.4, 0.2, 1.0], size=(12, 6))
    batched = jax.vmap(_scalar_energy)(jnp.asarray(params))
    looped = np.array([float(_scalar_energy(jnp.asarray(p))) for p in params])
    np.testing.assert_allclose(np.asarray(batched), looped, rtol=1e-14)
    broadcast = lepton_energies(*params.T).total
    np.testing.assert_allclose(np.asarray(broadcast), looped, rtol=1e-14)
    # A (beta, w) grid x 3 leptons by broadcasting alone.
    beta = jnp.linspace(3.0, 3.2, 4)[:, None, None]
    w = jnp.geomspace(0.005, 0.05, 5)[None, :, None]
    R_c, U, A = (jnp.asarray(v)[None, None, :] for v in ([1.0, 0.2, 0.5], [0.05, 0.1, 0.1], [0.9, 0.9, 0.8]))
    grid = lepton_energies(beta, w, qfdjax.lambda_from_eta(beta), R_c, U, A)
    assert grid.total.shape == (4, 5, 3)
    one = lepton_energies(3.0, float(w[0, 2, 0]), qfdjax.lambda_from_eta(3.0), 0.2, 0.1, 0.9)
    assert float(grid.total[0, 2, 1]) == pytest.approx(float(one.total), rel=1e-14)


def test_reference_vmap_over_w():
    w = np.array([0.005, 0.012, 0.03])
    numerics = reference_numerics(w)
    batched = lepton_energies(3.1, w, 0.006, 0.5, 0.1, 0.9, numerics=numerics).total
    for i, wi in enumerate(w):
        single = lepton_energies(3.1, wi, 0.006, 0.5, 0.1, 0.9, numerics=reference_numerics(wi)).total
        assert float(batched[i]) == pytest.approx(float(single), rel=1e-14)


@pytest.mark.parametrize("numerics", ["exact", "reference"])
def test_energy_derivatives_match_forward_mode(numerics):
    # U and A enter the energies in closed form; R_c through the quadrature.  All three
    # must equal forward-mode derivatives of the energies themselves.
    from qfdjax.fitting.problem import make_numerics
    from qfdjax.model.energy import lepton_energies_and_derivatives

    w = np.array([0.015, 0.03, 0.015])
    num = make_numerics(numerics, w)
    args = (np.array([3.1, 3.0, 3.2]), w, np.array([0.0065, 0.006, 0.007]))
    x = np.array([[0.5, 0.1, 0.9], [0.3, 0.05, 1.0], [1.2, 0.15, 0.75]])
    E, derivs = lepton_energies_and_derivatives(*args, *x.T, numerics=num)
    for k, d in enumerate(derivs):
        tangent = np.zeros_like(x)
        tangent[:, k] = 1.0
        _, want = jax.jvp(lambda v: lepton_energies(*args, v[:, 0], v[:, 1], v[:, 2], numerics=num),
                          (jnp.asarray(x),), (jnp.asarray(tangent),))
        for got, ref in zip(jax.tree_util.tree_leaves(d), jax.tree_util.tree_leaves(want), strict=True):
            np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("profile", ["boundary", "power 2", "power 3.5"])
def test_written_out_r_c_tangent_equals_forward_mode(profile):
    """Exact's node-by-node R_c derivative (panel ends moving, BoundaryLayer's own jet) equals forward mode
    through the quadrature, on panels clipped by r_min and r_max too, and its energies equal the primal's to
    rounding (its nodes are an array axis, the primal's a loop: the sums are added in another order)."""
    from qfdjax.model.profiles import make_profile

    prof = make_profile(*profile.split()[:1], *(float(v) for v in profile.split()[1:]))
    rng = np.random.default_rng(5)
    w = np.r_[rng.uniform(0.002, 0.3, 300), 0.001, 0.002, 0.05, 0.2]
    R_c = np.r_[rng.uniform(1e-3, 1.2, 300), 0.0005, 0.003, 0.97, 0.9]  # the last ones cross r_min or r_max
    for numerics in (Exact(), Exact(r_min=0.01, r_max=1.0)):
        values, tangents = numerics.unit_integrals_and_tangent(prof, jnp.asarray(w), jnp.asarray(R_c))
        want_values, want = jax.jvp(lambda r, n=numerics: n.unit_integrals(prof, jnp.asarray(w), r),
                                    (jnp.asarray(R_c),), (jnp.ones_like(jnp.asarray(R_c)),))
        for got, ref, value in zip(jax.tree_util.tree_leaves(tangents), jax.tree_util.tree_leaves(want),
                                   jax.tree_util.tree_leaves(want_values), strict=True):
            np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-12,
                                       atol=1e-13 * float(np.max(np.abs(np.asarray(value)))))
        for got, ref in zip(jax.tree_util.tree_leaves(values), jax.tree_util.tree_leaves(want_values), strict=True):
            np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=4e-15)  # a few ulps (seen: 1e-15)


def test_seed_grid_tables_share_kernel_shapes():
    # An interval refit's trial points bring new w: their tables must have the shapes
    # the scan's kernels were compiled for, not one shape per distinct grid.
    from qfdjax.model.numerics import TABLE_LENGTH_MULTIPLE, TABLE_MIN_GRIDS

    shapes = {reference_numerics(np.asarray(w)).r.shape
              for w in ([0.015], [0.01, 0.0102], np.geomspace(0.005, 0.05, 10), [0.0231, 0.0232, 0.0233])}
    assert len(shapes) == 1
    (length, grids), = shapes
    assert length % TABLE_LENGTH_MULTIPLE == 0 and grids == TABLE_MIN_GRIDS
    many = reference_numerics(np.linspace(0.005, 0.05, 20))
    assert many.r.shape[1] == 32 and np.asarray(many.grid_index).max() == 19
