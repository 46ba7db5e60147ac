"""Projected Levenberg-Marquardt for box-constrained least squares.

Why this method: the fit has few residuals (3 masses) and up to 9 parameters,
and its optimum sits on the box boundary with most parameters at a bound.
Smooth transforms (sigmoid, tanh) push a bound to infinity, so a fit converging
*at* a bound crawls and never certifies it.  Instead we work on the unit box
and, at each step, split parameters into an active set (at a bound with the
gradient pushing outward, plus fixed ones) and a free set, take a damped
Gauss-Newton step on the free set, and project it back into the box.  The
damping makes the rank-deficient J^T J (rank <= number of residuals) safe and
lets the step interpolate between Gauss-Newton and gradient descent
(Moré 1978; Kanzow, Yamashita & Fukushima 2004 for the projected variant).
With at most as many residuals as parameters the step is solved in the row
space of J (`damped_step`: one Householder QR of J^T and a k x k system), the
active set entering as zeroed columns of J.

Convergence is certified by the projected gradient: at a box-constrained
minimum, every free component of the gradient vanishes and every active one
points outward.  `LMResult.projected_gradient` reports it relative to chi^2.
The loop is a `lax.while_loop`, so it jits, vmaps over starts and points, and
stops per lane when converged.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from ...model.batching import lanes_last


# The projected gradient is measured relative to chi^2, but never relative to less
# than 1: a fit that reaches chi^2 ~ 1e-25 has no scale left, and "small" then
# means small in absolute chi^2 units (one unit of chi^2 is one sigma squared).
CHI2_SCALE_FLOOR = 1.0


class LMConfig(eqx.Module):
    max_steps: int = eqx.field(static=True, default=300)
    # Stop when an accepted step lowers chi^2 by less than this fraction...
    ftol: float = 1e-13
    # ...or when the projected gradient is this small relative to chi^2 (unit box).
    gtol: float = 1e-10
    initial_damping: float = 1e-3


class LMResult(eqx.Module):
    u: Float[Array, " n"]
    chi2: Float[Array, ""]
    projected_gradient: Float[Array, ""]
    steps: Int[Array, ""]
    converged: Bool[Array, ""]


class LMState(eqx.Module):
    """Where one LM run stands: it can be stopped after any step and resumed bit for bit."""

    u: Array
    chi2: Array
    damping: Array
    step: Array
    done: Array
    stalls: Array


def projected_gradient_norm(u, grad, fixed):
    """|| P(u - g) - u ||_inf over the last axis: zero exactly at a box-constrained stationary point.

    Traced inside kernels, NumPy on the host (the diagnostics' check of a reported point): no device
    dispatch there."""
    xp = jnp if isinstance(u, jax.Array) or isinstance(grad, jax.Array) else np
    moved = xp.clip(u - grad, 0.0, 1.0) - u
    return xp.max(xp.where(fixed, 0.0, xp.abs(moved)), axis=-1)


def lm_start(u0, config: LMConfig = LMConfig()) -> LMState:
    """A fresh run from u0 (its chi^2, NaN here, comes from the first linearisation)."""
    return LMState(u0, jnp.full((), jnp.nan, u0.dtype), jnp.asarray(config.initial_damping, u0.dtype),
                   jnp.asarray(0), jnp.asarray(False), jnp.asarray(0))


def _jacfwd_linearize(residual_fn):
    return lambda u: (residual_fn(u), jax.jacfwd(residual_fn)(u))


def solve_damped(system, rhs):
    """x with system @ x = rhs for the damped, symmetric positive definite LM system (n x n).

    The normal form, used where a fit has more residuals than parameters (otherwise
    `damped_step` solves the smaller residual-space problem).

    Gauss-Jordan elimination without row exchanges, which is backward stable
    for symmetric positive definite matrices (every pivot is positive and no
    entry grows).  Why not jnp.linalg.solve: on CPU its LAPACK call makes every
    process that loads a compiled fit kernel initialise JAX's LAPACK bindings,
    which imports SciPy's linear algebra (0.13 s of a 1.3 s warm `qfdjax fit`),
    and batched over lanes it is slower: 1.4 us per 9 x 9 system against
    0.6 us here (measured, 512 lanes, 2 cores).  A `fori_loop` over columns
    keeps the traced graph one column long; whole-matrix updates avoid the
    gathers and scatters that row exchanges would need across lanes.
    """
    return _solve_lanes(system[..., None], rhs[..., None])[..., 0]


def _householder(A):
    """Householder QR of A (m, k, lanes), m >= k, unrolled over its k columns (k is a trace-time shape).

    Returns (R, reflectors): R (k, k, lanes) upper triangular and, per column, (v, tau) with
    Q^T = H_{k-1} ... H_0, H_j = I - tau_j v_j v_j^T.  A zero column gives tau = 0 (H = I),
    so a parameter on its bound (a zeroed column) needs no branch.
    """
    m, k = A.shape[:2]
    rows = jnp.arange(m)[:, None]
    reflectors = []
    for j in range(k):
        x = jnp.where(rows >= j, A[:, j], 0.0)
        norm = jnp.sqrt(jnp.sum(x * x, 0))
        sign = jnp.where(A[j, j] >= 0.0, 1.0, -1.0)
        v = x + jnp.where(rows == j, sign * norm, 0.0)
        vv = jnp.sum(v * v, 0)
        tau = jnp.where(vv > 0.0, 2.0 / jnp.where(vv > 0.0, vv, 1.0), 0.0)
        A = A - tau * (v[:, None] * jnp.sum(v[:, None] * A, 0))
        reflectors.append((v, tau))
    return A[:k], reflectors


def _solve_lanes(system, rhs):
    """`solve_damped` for (k, k, lanes) systems and (k, lanes) right-hand sides (lanes may be 1)."""
    k = rhs.shape[0]
    rows = jnp.arange(k)[:, None, None]
    augmented = jnp.concatenate([system, rhs[:, None]], axis=1)

    def eliminate(i, m):
        row = jax.lax.dynamic_index_in_dim(m, i, 0, keepdims=False)
        row = row / jax.lax.dynamic_index_in_dim(row, i, 0, keepdims=False)
        column = jax.lax.dynamic_index_in_dim(m, i, 1, keepdims=False)
        return jnp.where(rows == i, row[None], m - column[:, None] * row[None])

    return jax.lax.fori_loop(0, k, eliminate, augmented)[:, k]


@lanes_last
def damped_step(J, r, mu):
    """delta = argmin ||J delta + r||^2 + mu ||delta||^2 for J (k, n) with k <= n, mu > 0.

    The step lies in the row space of J, which has at most k dimensions (the fit has 3-6
    residuals and up to 9 parameters): with J^T = Q R (Householder), delta = Q y and
    (R R^T + mu I) y = -R r, a k x k system instead of the n x n normal equations.
    Why not the textbook residual-space form -J^T (J J^T + mu I)^-1 r: its right-hand side
    is r itself, and with S* profiled J is rank deficient by construction (an electron-only
    step moves every residual along one vector), so the part of r no step can reach
    (sqrt(chi^2) ~ 4e3 at the seed's optimum) comes back through the rounding of the null
    directions divided by mu -- at small damping that stalled the seed fit's projected
    gradient at 9e-6 instead of below 1e-6.  Here the right-hand side is R r = Q^T J^T r,
    the gradient, so rounding errors scale with the step, as in the normal equations.
    A column of zeros (a parameter held on its bound) stays out of the step.

    Written for lanes on the last axis (`lanes_last`): vmapped over an LM batch, every small product
    is a sum over a leading axis, elementwise across lanes, where vmap's lanes-first layout made
    XLA:CPU run tiny batched dots (damped step 0.33 -> 0.2 us per lane, 2 cores): here J is
    (k, n, lanes), r (k, lanes) and mu (lanes,).
    """
    k, n = J.shape[:2]
    R, reflectors = _householder(jnp.swapaxes(J, 0, 1))
    system = jnp.sum(R[:, None] * R[None], 2) + mu * jnp.eye(k, dtype=J.dtype)[..., None]
    y = _solve_lanes(system, -jnp.sum(R * r[None], 1))
    delta = jnp.concatenate([y, jnp.zeros((n - k,) + y.shape[1:], J.dtype)])
    for v, tau in reversed(reflectors):
        delta = delta - tau * v * jnp.sum(v * delta, 0)
    # Exactly zero, not a reflector's rounding (1e-24), for a held parameter: it stays on its bound.
    return jnp.where(jnp.any(J != 0.0, axis=0), delta, 0.0)


def lm_steps(linearize, state: LMState, fixed, config: LMConfig = LMConfig(), until=None, *, linearized=None,
             count_lanes=None, running_above=-1, chi2_floor=0.0):
    """Take LM steps until converged, `config.max_steps`, or step count `until` (a traced int).

    `chi2_floor`: a run whose chi^2 is below it has stopped (an exact fit, to the rounding of its
    residuals: see `Likelihood.chi2_rounding_floor`); 0 never stops a run early.

    `linearized`: (r, J) at `state.u` as the previous call returned them, used instead of
    linearising again wherever the run is not fresh.  Why: the linearisation before the loop and the
    one inside it are compiled apart and may differ in the last bit, so a run resumed from a fresh
    linearisation depended on where it had been cut (17 of 1280 starts of the 16 x 10 scan took
    other step counts with rounds of 20 steps instead of 24); with the loop's own (r, J) carried
    over, a run is the same bit for bit however it is cut.
    `count_lanes(flag) -> int`, where the loop runs vmapped over lanes: how many lanes of the batch
    have `flag` (a collective).  With it every lane stops once no more than `running_above` are
    still running (the caller re-packs the rest into a smaller batch), and the linearisation of
    fresh runs is skipped where the batch has none.

    `linearize(u) -> (r, J)`.  A NaN `state.chi2` marks a fresh start (its
    chi^2 is taken from the first linearisation).  Returns the final state with
    its residuals and Jacobian, which the loop has already computed: the
    projected gradient at the end needs no further pass through the model.
    """
    n = state.u.shape[0]
    eye = jnp.eye(n)
    fresh = jnp.isnan(state.chi2)
    if linearized is None:
        r0, J0 = linearize(state.u)
    else:
        def relinearize():
            r, J = linearize(state.u)
            return jnp.where(fresh, r, linearized[0]), jnp.where(fresh, J, linearized[1])

        # Without a lane count every lane linearises (cond under vmap runs both branches anyway).
        has_fresh = jnp.any(fresh) if count_lanes is None else count_lanes(fresh) > 0
        r0, J0 = jax.lax.cond(has_fresh, relinearize, lambda: tuple(linearized))
    # No more residuals than parameters (every fit of this model): the step is a k x k problem.
    residual_space = r0.shape[0] <= n
    limit = config.max_steps if until is None else jnp.minimum(until, config.max_steps)

    def step(carry):
        # (r, J) at state.u ride along: a trial point's residuals come with its
        # Jacobian (one tangent through the quadrature), which the next step then needs only
        # if the trial is accepted — most are — instead of recomputing both.
        state, r, J = carry
        g = J.T @ r  # half the chi^2 gradient
        active = fixed | ((state.u <= 0.0) & (g > 0.0)) | ((state.u >= 1.0) & (g < 0.0))
        free = (~active).astype(state.u.dtype)
        J_free = J * free
        curvature = jnp.max(jnp.sum(J_free * J_free, axis=0))
        # Damping relative to the curvature scale keeps the update unit-free.
        scale = jnp.maximum(curvature, 1e-300)
        if residual_space:
            delta = damped_step(J_free, r, state.damping * scale)
            # Every parameter held (no free column): no step, rather than 0/0.
            delta = jnp.where(curvature > 0.0, delta, 0.0)
        else:
            system = J_free.T @ J_free + (state.damping * scale) * eye + jnp.diag(1.0 - free) * scale
            delta = solve_damped(system, -g * free)
        u_new = jnp.where(fixed, state.u, jnp.clip(state.u + delta, 0.0, 1.0))
        r_new, J_new = linearize(u_new)
        chi2_new = jnp.sum(r_new * r_new)
        actual = state.chi2 - chi2_new
        taken = u_new - state.u
        predicted = -(2.0 * g @ taken + taken @ (J.T @ (J @ taken)))
        rho = actual / jnp.where(predicted > 0, predicted, jnp.inf)
        accept = chi2_new < state.chi2
        damping = jnp.where(
            accept,
            state.damping * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3),
            state.damping * 4.0,
        )
        damping = jnp.clip(damping, 1e-15, 1e15)
        small_gain = accept & (actual <= config.ftol * state.chi2)
        # At chi^2's rounding floor: a rejected step that neither the linear model nor chi^2 itself
        # sees move by more than ftol chi^2.  Such a step is a stall too: without it a fit stuck a hair
        # above gtol by rounding waited for its damping to climb from 1e-10 to 1e15, about 45 rejected
        # steps (37 % of a 64-start batch's lane-steps).  A rejection that moves chi^2 more than that
        # says the model is poor at this scale (the g-factor fits far from their optimum): it only
        # raises the damping, as before -- counting those stopped such fits early.  The floor is
        # relative to chi^2 itself, as small_gain's is: an exact fit (chi^2 ~ 1e-15 on its way to
        # 1e-22) must not stop at an absolute one.
        floor = config.ftol * state.chi2
        at_floor = (predicted <= floor) & (jnp.abs(actual) <= floor)
        stalls = jnp.where(accept, jnp.where(small_gain, state.stalls + 1, 0),
                           jnp.where(at_floor, state.stalls + 1, state.stalls))
        u = jnp.where(accept, u_new, state.u)
        chi2 = jnp.where(accept, chi2_new, state.chi2)
        grad = 2.0 * g
        pg = projected_gradient_norm(state.u, grad / jnp.maximum(state.chi2, CHI2_SCALE_FLOOR), fixed)
        # An exact fit whose chi^2 has reached its residuals' rounding cannot gain any more, but its gradient
        # is rounding too, often above gtol (stiff directions): such a run went on rejecting steps until its
        # damping reached 1e15, 25-35 steps, a third of a Feldman-Cousins refit's lane-steps (measured).
        done = (pg <= config.gtol) | (stalls >= 3) | (damping >= 1e15) | (chi2 < chi2_floor)
        r = jnp.where(accept, r_new, r)
        J = jnp.where(accept, J_new, J)
        return LMState(u, chi2, damping, state.step + 1, done, stalls), r, J

    def keep_going(carry):
        state = carry[0]
        running = (~state.done) & (state.step < limit)
        return running if count_lanes is None else running & (count_lanes(running) > running_above)

    state = eqx.tree_at(lambda s: s.chi2, state, jnp.where(fresh, jnp.sum(r0 * r0), state.chi2))
    return jax.lax.while_loop(keep_going, step, (state, r0, J0))


def result_at(state: LMState, r, J, fixed) -> LMResult:
    """The LM result at `state`, whose residuals and Jacobian are (r, J)."""
    grad = 2.0 * J.T @ r
    pg = projected_gradient_norm(state.u, grad / jnp.maximum(state.chi2, CHI2_SCALE_FLOOR), fixed)
    return LMResult(state.u, state.chi2, pg, state.step, state.done)


def projected_levenberg_marquardt(residual_fn, u0, fixed, config: LMConfig = LMConfig()) -> LMResult:
    """Minimise sum(residual_fn(u)**2) over u in [0, 1]^n; `fixed` entries never move."""
    state, r, J = lm_steps(_jacfwd_linearize(residual_fn), lm_start(u0, config), fixed, config)
    return result_at(state, r, J, fixed)
