"""The projected Levenberg-Marquardt solver and its damped linear solve."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qfdjax.fitting.optimize import LMConfig, projected_levenberg_marquardt
from qfdjax.fitting.optimize.lm import damped_step, solve_damped


@pytest.mark.parametrize("n", [3, 9, 11])
def test_solve_damped_matches_lapack(n):
    rng = np.random.default_rng(n)
    # LM's systems: J^T J (rank-deficient, badly scaled) plus a little damping, batched over lanes.
    J = rng.normal(size=(16, 3, n)) * np.logspace(0, 6, n)
    systems = np.einsum("bri,brj->bij", J, J) + 1e-6 * np.eye(n) * np.max(J**2)
    rhs = rng.normal(size=(16, n))
    got = np.asarray(jax.jit(jax.vmap(solve_damped))(systems, rhs))
    want = np.linalg.solve(systems, rhs[..., None])[..., 0]
    residual = np.einsum("bij,bj->bi", systems, got) - rhs
    assert np.max(np.abs(residual)) < 1e-9 * np.max(np.abs(systems)) * np.max(np.abs(got))
    # Same answer as LAPACK to the conditioning these systems allow.
    assert np.allclose(got, want, rtol=1e-6, atol=1e-12 * np.max(np.abs(want)))


@pytest.mark.parametrize("k,n", [(1, 3), (3, 9), (6, 9), (3, 3)])
@pytest.mark.parametrize("mu", [1e-15, 1e-3, 1e3])
def test_damped_step_is_the_damped_least_squares_step(k, n, mu):
    rng = np.random.default_rng(10 * k + n)
    J = rng.normal(size=(8, k, n)) * np.logspace(0, 5, n)
    # Nearly rank deficient rows (as with a profiled scale) and a held parameter (a zero column).
    J[:, -1] = J[:, 0] * (1 + 1e-9) if k > 1 else J[:, -1]
    J[:, :, 1] = 0.0
    r = rng.normal(size=(8, k))
    scale = np.max(np.sum(J * J, axis=1), axis=-1)
    got = np.asarray(jax.jit(jax.vmap(damped_step))(J, r, mu * scale))
    normal = np.asarray(jax.vmap(solve_damped)(
        np.einsum("bri,brj->bij", J, J) + (mu * scale)[:, None, None] * np.eye(n), -np.einsum("bri,br->bi", J, r)))
    for lane in range(8):
        assert got[lane, 1] == 0.0  # the held parameter does not move, not even by rounding
        # The oracle: least squares on [J; sqrt(mu) I] delta = [-r; 0], by LAPACK's SVD.
        A = np.vstack([J[lane], np.sqrt(mu * scale[lane]) * np.eye(n)])
        b = np.r_[-r[lane], np.zeros(n)]
        want = np.linalg.lstsq(A, b, rcond=None)[0]
        objective = lambda d: np.sum((A @ d - b) ** 2)  # noqa: E731, B023
        # As low as the oracle's objective, and not above the n x n normal equations' (the old step).
        assert objective(got[lane]) <= objective(want) * (1 + 1e-9) + 1e-30
        assert objective(got[lane]) <= objective(normal[lane]) * (1 + 1e-9) + 1e-30
        if mu >= 1e-3:  # well conditioned: the same vector
            np.testing.assert_allclose(got[lane], want, rtol=1e-7, atol=1e-9 * np.max(np.abs(want)))


def test_damped_step_vmapped_lanes_last_equals_one_lane_at_a_time():
    """Under vmap the step runs with the lanes on the last axis (its custom batching rule): the same
    algorithm as one lane alone, to rounding, whether mu is per lane or shared, and under nested vmaps."""
    rng = np.random.default_rng(3)
    J = rng.normal(size=(4, 6, 3, 9)) * np.logspace(0, 4, 9)
    J[..., 2] = 0.0
    r, mu = rng.normal(size=(4, 6, 3)), rng.uniform(1e-6, 1e2, size=(4, 6))
    one = np.array([[np.asarray(jax.jit(damped_step)(J[a, b], r[a, b], mu[a, b])) for b in range(6)] for a in range(4)])
    nested = np.asarray(jax.jit(jax.vmap(jax.vmap(damped_step)))(J, r, mu))
    shared = np.asarray(jax.jit(jax.vmap(damped_step, in_axes=(0, 0, None)))(J[0], r[0], mu[0, 0]))
    scale = np.max(np.abs(one))
    np.testing.assert_allclose(nested, one, rtol=1e-12, atol=1e-14 * scale)
    np.testing.assert_allclose(shared[0], one[0, 0], rtol=1e-12, atol=1e-14 * scale)
    assert np.all(nested[..., 2] == 0.0) and np.all(shared[..., 2] == 0.0)


def test_lm_finds_bounded_minimum():
    # Rosenbrock residuals on the unit box scaled to [-2, 0.5]^2: the free minimum (1, 1)
    # lies outside, so the bounded one sits on the x = 0.5 edge at y = 0.25.
    def residuals(u):
        x, y = -2.0 + 2.5 * u[0], -2.0 + 2.5 * u[1]
        return jnp.stack([10.0 * (y - x * x), 1.0 - x])

    result = projected_levenberg_marquardt(residuals, jnp.array([0.2, 0.3]), jnp.array([False, False]),
                                           LMConfig(max_steps=200))
    assert bool(result.converged)
    np.testing.assert_allclose(np.asarray(result.u), [1.0, (0.25 + 2.0) / 2.5], atol=1e-8)
    assert abs(float(result.chi2) - 0.25) < 1e-12
    assert float(result.projected_gradient) < 1e-8


def test_an_lm_run_resumed_from_its_handed_over_linearisation_is_the_run_uncut():
    """lm_steps(linearized=...) outside a lane batch (no lane count): a run stopped at step 3 and resumed
    with the (r, J) it returned takes exactly the steps of the run never stopped."""
    from qfdjax.fitting.optimize.lm import _jacfwd_linearize, lm_start, lm_steps

    def residuals(u):
        x, y = -2.0 + 2.5 * u[0], -2.0 + 2.5 * u[1]
        return jnp.stack([10.0 * (y - x * x), 1.0 - x])

    linearize, fixed, config = _jacfwd_linearize(residuals), jnp.array([False, False]), LMConfig(max_steps=200)
    run = jax.jit(lambda state, until, r, J: lm_steps(linearize, state, fixed, config, until, linearized=(r, J)))
    nan = jnp.full((2,), jnp.nan), jnp.full((2, 2), jnp.nan)
    whole = run(lm_start(jnp.array([0.2, 0.3]), config), 200, *nan)
    cut = run(lm_start(jnp.array([0.2, 0.3]), config), 3, *nan)
    assert int(cut[0].step) == 3 and int(whole[0].step) > 6
    resumed = run(cut[0], 200, cut[1], cut[2])
    for a, b in zip(jax.tree_util.tree_leaves(whole), jax.tree_util.tree_leaves(resumed), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_run_below_its_chi2_floor_stops_there_and_without_one_goes_on():
    """chi2_floor ends a run at the first accepted step below it; the default (0) never does, and a run that
    never gets below its floor is the same run with or without it."""
    from qfdjax.fitting.optimize.lm import _jacfwd_linearize, lm_start, lm_steps

    def residuals(u):  # an exact fit: both residuals vanish at (0.5, 0.5)
        x, y = -2.0 + 4.0 * u[0], -2.0 + 4.0 * u[1]
        return jnp.stack([10.0 * (y - x * x), 1.0 * (x - y)])

    linearize, fixed, config = _jacfwd_linearize(residuals), jnp.array([False, False]), LMConfig(max_steps=200)
    run = jax.jit(lambda floor: lm_steps(linearize, lm_start(jnp.array([0.9, 0.2]), config), fixed, config,
                                         chi2_floor=floor)[0])
    free, floored = run(0.0), run(1e-6)
    assert bool(floored.done) and float(floored.chi2) < 1e-6
    assert int(floored.step) < int(free.step) and float(free.chi2) < float(floored.chi2)
    # Every step before the last was above the floor: it stopped at the first one below, not later.
    before = jax.jit(lambda until: lm_steps(linearize, lm_start(jnp.array([0.9, 0.2]), config), fixed, config,
                                            until, chi2_floor=1e-6)[0])(int(floored.step) - 1)
    assert float(before.chi2) >= 1e-6 and not bool(before.done)
    unreachable = run(-1.0)
    for a, b in zip(jax.tree_util.tree_leaves(free), jax.tree_util.tree_leaves(unreachable), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_g_factor_fit_is_not_stopped_by_its_rounding_floor_rule():
    """The rounding-floor stall (a rejected step that moves neither the model nor chi^2) must not fire on a
    rejection where chi^2 moved: counting every tiny-prediction rejection stopped these e+mu g-factor fits
    early (3701377.97 here instead of 3695679.31, and 20 of 29 points of the committed g_factor_beta scan
    uncertified)."""
    from qfdjax.fitting.fit import FitConfig, fit_points
    from qfdjax.fitting.observables import build_likelihood
    from qfdjax.fitting.params import ParameterSpace
    from qfdjax.model.constants import lambda_from_eta

    space = ParameterSpace.seed(("e", "mu"))
    out = fit_points([2.7], [0.02], lambda_from_eta(np.array([2.7])), space=space,
                     likelihood=build_likelihood(("e", "mu"), ("mass", "g")), config=FitConfig(starts=8))
    assert out["chi2"][0] == pytest.approx(3695679.31254704, rel=1e-10)
    assert out["converged"][0]


def test_more_residuals_than_parameters_uses_the_normal_equations():
    # k = 3 > n = 2: the row-space step does not apply, the n x n normal form does.  A line through three
    # points, slope bounded to [0, 0.5] on the unit box: the bounded optimum has the slope on its bound.
    x = jnp.array([0.0, 1.0, 2.0])
    y = jnp.array([0.0, 1.0, 2.0])

    def residuals(u):
        slope, intercept = 0.5 * u[0], -1.0 + 2.0 * u[1]
        return slope * x + intercept - y

    result = projected_levenberg_marquardt(residuals, jnp.array([0.2, 0.5]), jnp.array([False, False]),
                                           LMConfig(max_steps=100))
    assert bool(result.converged)
    # Slope at its upper bound 0.5; the intercept then minimises sum((0.5 x + c - x)^2): c = mean(0.5 x) = 0.5.
    np.testing.assert_allclose(np.asarray(result.u), [1.0, 0.75], atol=1e-9)


@pytest.mark.parametrize("case", ["seed", "shared and fixed", "toy data", "with g"])
def test_the_fits_jacobian_equals_forward_mode_of_its_residuals(case):
    """The LM's Jacobian (one R_c tangent through the quadrature; the masses' profiled scale written out,
    or the likelihood's tangents where observables other than the masses enter) equals jacfwd of the
    residuals, at the seed's bounds, with shared and fixed parameters, and on a toy's data."""
    from qfdjax.fitting.fit import resolve_lambda
    from qfdjax.fitting.kernel import initial_starts
    from qfdjax.fitting.likelihood import Likelihood
    from qfdjax.fitting.observables import build_likelihood
    from qfdjax.fitting.params import ParameterSpace
    from qfdjax.fitting.problem import Problem, make_numerics
    from qfdjax.model.profiles import BoundaryLayer

    space = ParameterSpace.seed()
    if case == "shared and fixed":
        space = space.with_overrides(fixed={"e.U": 0.05}, shared=[["e.A", "mu.A", "tau.A"]])
    likelihood = (build_likelihood(space.leptons, ("mass", "g")) if case == "with g"
                  else Likelihood.masses_only(space.leptons))
    problem = Problem.build(space, likelihood, BoundaryLayer())
    if case == "toy data":
        problem = problem.with_data(likelihood.data() * np.array([1.001, 0.998, 1.0005]))
    rng = np.random.default_rng(3)
    beta, w = rng.uniform(2.95, 3.25, 16), rng.uniform(0.005, 0.05, 16)
    lam = np.array([resolve_lambda(b) for b in beta])
    u = initial_starts(space, 1, np.arange(16), 0)[0][:, 0]
    # Some starts on the box's faces, where clip's derivative is a tie (1/2), as jacfwd has it.
    u[:4, 4], u[4:8, 7], u[8:10, :3] = 0.0, 1.0, 1.0
    numerics = make_numerics("exact", w)
    r, J = jax.vmap(lambda *a: problem.residuals_and_jacobian(*a, numerics))(u, beta, w, lam)
    want_r = jax.vmap(lambda *a: problem.residuals(*a, numerics))(u, beta, w, lam)
    want_J = jax.vmap(lambda v, *a: jax.jacfwd(lambda x: problem.residuals(x, *a, numerics))(v))(u, beta, w, lam)
    np.testing.assert_allclose(np.asarray(r), np.asarray(want_r), rtol=1e-12, atol=1e-9)
    scale = np.max(np.abs(np.asarray(want_J)), axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(np.asarray(J) / scale, np.asarray(want_J) / scale, rtol=0, atol=1e-13)
