"""Numerics as strategies: how the radial and angular integrals are done.

`Exact` integrates the model as written: Gauss-Legendre panels broken where the
integrands change form, exact angular factors and the exterior flow in closed
form.  `Reference` reproduces the seed's own grid, Simpson/trapezoid rules and
finite differences, so its published numbers can be matched to rounding.

Each strategy computes `unit_integrals(profile, w, R_c)`: the integrals at unit
speed and depth, from which `energies(profile, beta, w, lam, R_c, U, A)` and
`energies_and_derivatives` follow in closed form.  All take arrays of one
common shape (any batch shape) and return results of that shape.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from . import flow
from .integrands import core_tangent, interior_densities, node_axis, panel_jet_sums, point_densities
from .types import Energies, UnitIntegrals, unit_integrals
from .constants import R_MAX_DEFAULT, R_MIN_DEFAULT
from .quadrature import SeedGridSpec, gauss_legendre, seed_grid_table, seed_radial_grid

NUMERICS_NAMES = ("exact", "reference")


def check_numerics_name(name: str) -> str:
    from ..errors import InputError

    if not isinstance(name, str) or name not in NUMERICS_NAMES:
        raise InputError(f"numerics = {name!r} is unknown: must be one of {', '.join(NUMERICS_NAMES)}")
    return name


class AbstractNumerics(eqx.Module):
    # True where every point's integrals depend on that point's inputs alone, array leaves included
    # (`Exact`'s r_min and r_max broadcast against the points; `Reference`'s weight tables do not).
    elementwise: ClassVar[bool] = False

    @abc.abstractmethod
    def unit_integrals(self, profile, w, R_c) -> UnitIntegrals:
        """The energy integrals at U = A = 1 for broadcast-compatible arrays of one shape."""

    def energies(self, profile, beta, w, lam, R_c, U, A) -> Energies:
        """Energies for broadcast-compatible arrays of one shape."""
        return self.unit_integrals(profile, w, R_c).energies(beta, lam, U, A)

    def energies_and_derivatives(self, profile, beta, w, lam, R_c, U, A):
        """Energies and their derivatives in R_c, U and A (each an `Energies` of the same shape).

        One R_c tangent goes through the quadrature (`unit_integrals_and_tangent`); U and A
        enter in closed form (see `UnitIntegrals`).
        """
        integrals, d_R_c = self.unit_integrals_and_tangent(profile, w, R_c)
        d_U, d_A = integrals.derivatives(beta, lam, U, A)
        return integrals.energies(beta, lam, U, A), (d_R_c.energies(beta, lam, U, A), d_U, d_A)

    def unit_integrals_and_tangent(self, profile, w, R_c) -> tuple[UnitIntegrals, UnitIntegrals]:
        """The unit integrals and their derivatives in R_c (forward mode; `Exact` writes it out)."""
        return jax.jvp(lambda r: self.unit_integrals(profile, w, r), (R_c,), (jnp.ones_like(R_c),))

    def select(self, indices):
        """The numerics of a sub-batch of points (host-side indices)."""
        return self

    def point_axes(self):
        """vmap in_axes for this module over a batch of points (None: shared by all)."""
        return jax.tree_util.tree_map(lambda _: None, self)

    def repeat(self, count: int):
        """Each point's numerics repeated `count` times (for point x start lanes)."""
        return self


class Exact(AbstractNumerics):
    """Converged quadrature, exact to rounding for the boundary-layer model.

    On [r_min, R_c] the integrands are polynomials in r of degree <= 10, so 6
    Gauss-Legendre nodes integrate them exactly; on [R_c, R] the degree is
    <= 20 (Delta rho^2 r^2), so 11 nodes do.  Beyond R the density is 1 and the
    flow integral has a closed form.  No adaptive loops and no branches: 17
    evaluations per lepton.

    The primal visits the nodes by a `lax.scan` whose body is elementwise over the batch: XLA fuses
    each node into one vectorised pass while the traced graph stays one node long, which keeps
    compiling gradients and Hessians fast (unrolling all 17 nodes is ~2x faster to run but ~50x
    slower to compile under jax.hessian).  The R_c tangent puts the nodes on an array axis instead
    (`unit_integrals_and_tangent` says why).
    """

    elementwise: ClassVar[bool] = True
    r_min: Float[Array | np.ndarray, "..."] | float = R_MIN_DEFAULT
    r_max: Float[Array | np.ndarray, "..."] | float = R_MAX_DEFAULT
    # None: sized from the profile's polynomial degrees (6 and 11 nodes for the
    # boundary layer).
    order_core: int | None = eqx.field(static=True, default=None)
    order_layer: int | None = eqx.field(static=True, default=None)
    # Unrolled node loop: for XLA's cost analysis, which counts a loop body once.
    unroll: bool = eqx.field(static=True, default=False)

    def _node_table(self, profile) -> np.ndarray:
        """(t, weight, in core?) per node, the core panel's nodes first (a host constant)."""
        core, layer = (exact_order(d) for d in profile.degrees())
        order_core = self.order_core or core
        order_layer = self.order_layer or layer
        t_core, w_core = gauss_legendre(order_core)
        t_layer, w_layer = gauss_legendre(order_layer)
        in_core = np.r_[np.ones(order_core), np.zeros(order_layer)]
        return np.stack([np.r_[t_core, t_layer], np.r_[w_core, w_layer], in_core], -1)

    def _panels(self, R_c, w):
        """Core [lo, mid] and layer [mid, hi] panels clipped to the domain (a panel outside it gets zero
        length), with their ends' derivatives in R_c."""
        R = R_c + w
        lo = jnp.broadcast_to(jnp.asarray(self.r_min, R.dtype), R.shape)
        mid = jnp.maximum(R_c, lo)
        inner = jnp.minimum(R, self.r_max)
        hi = jnp.maximum(inner, mid)
        d_mid = jnp.where(R_c >= lo, 1.0, 0.0)
        d_hi = jnp.where(inner >= mid, jnp.where(R <= self.r_max, 1.0, 0.0), d_mid)
        return R, lo, mid, hi, d_mid, d_hi

    def _exterior(self, R_c, w):
        """The flow past R (rho = 1 there) in closed form, at U = 1."""
        R = R_c + w
        outer = jnp.minimum(jnp.maximum(R, self.r_min), self.r_max)
        return flow.exterior_circulation(outer, self.r_max, R, jnp.ones_like(R))

    def _primal_sums(self, profile, w, R_c, nodes, sums):
        """`sums` plus the Gauss sums of the four densities over `nodes` (rows of the node table)."""
        R, lo, mid, hi, _, _ = self._panels(R_c, w)

        def add_node(sums, node):
            t, weight, in_core, start, length = _on_panel(node, lo, mid, hi)
            r = start + length * t
            densities = interior_densities(profile, r, R_c, w)
            return tuple(s + (weight * length) * d for s, d in zip(sums, densities, strict=True)), None

        return jax.lax.scan(add_node, sums, jnp.asarray(nodes), unroll=self.unroll)[0]

    def unit_integrals(self, profile, w, R_c) -> UnitIntegrals:
        zero = jnp.zeros_like(R_c + w)
        flow_sum, deficit_sum, stab_sum, grad_sum = self._primal_sums(profile, w, R_c, self._node_table(profile),
                                                                       (zero,) * 4)
        return unit_integrals(flow_sum, deficit_sum, stab_sum, grad_sum, exterior=self._exterior(R_c, w))

    def unit_integrals_and_tangent(self, profile, w, R_c) -> tuple[UnitIntegrals, UnitIntegrals]:
        """The derivative of the Gauss sums themselves, written out node by node: the panel ends move with
        R_c (d length, d r = d start + t d length) and the integrands by the profile's `jet`.  Forward mode
        through the node loop cost 3.4 primals (0.89 against 0.26 us per lane of three leptons, 2 cores).

        Where the profile's core is scale-free (`AbstractProfile.scale_free_core`), the core panel's
        derivative is its sums' scaling law plus end-point terms (`core_tangent`): its nodes take the
        primal's work only.

        The nodes are a leading array axis here, each panel's sums a reduction over it: in the LM kernel
        the primal's loop ran ten small fusions per node and carried eight sums (LM lane-step 1.21 -> 1.06
        us, 2 cores), while for the primal alone the loop stays faster (energies 54 against 71 ns per
        lepton).  So the values equal `unit_integrals`' to rounding, not bit for bit."""
        R, lo, mid, hi, d_mid, d_hi = self._panels(R_c, w)
        table = self._node_table(profile)
        core, layer = table[table[:, 2] > 0], table[table[:, 2] == 0]
        if profile.scale_free_core:
            t, weight = node_axis(core, R_c.ndim)
            sums = tuple(jnp.sum((weight * (mid - lo)) * d, 0)
                         for d in interior_densities(profile, lo + (mid - lo) * t, R_c, w))
            d_sums = core_tangent(sums, [(r, interior_densities(profile, r, R_c, w)) for r in (lo, mid)], d_mid, R)
        else:
            sums, d_sums = panel_jet_sums(profile, w, R_c, core, lo, mid - lo, 0.0, d_mid)
        layer_sums, d_layer_sums = panel_jet_sums(profile, w, R_c, layer, mid, hi - mid, d_mid, d_hi - d_mid)
        # The exterior is a closed form: its own forward mode is cheap.
        ext, d_ext = jax.jvp(lambda r_c: self._exterior(r_c, w), (R_c,), (jnp.ones_like(R_c),))
        flow_sum, deficit_sum, stab_sum, grad_sum = (c + la for c, la in zip(sums, layer_sums, strict=True))
        d_flow, d_deficit, d_stab, d_grad = (c + la for c, la in zip(d_sums, d_layer_sums, strict=True))
        return (unit_integrals(flow_sum, deficit_sum, stab_sum, grad_sum, exterior=ext),
                unit_integrals(d_flow, d_deficit, d_stab, d_grad, exterior=d_ext))


def _on_panel(node, lo, mid, hi):
    """A node of the table (t, weight, in core?) placed on its panel: (t, weight, in_core, start, length)."""
    t, weight, in_core = node[0], node[1], node[2] > 0
    return t, weight, in_core, jnp.where(in_core, lo, mid), jnp.where(in_core, mid - lo, hi - mid)


def exact_order(degree: int) -> int:
    """Gauss nodes that integrate all three integrands exactly for Delta rho of this degree.

    Delta rho^2 r^2 has degree 2d + 2 and (1 + Delta rho) r^2 v^2 degree d + 6;
    n nodes are exact up to degree 2n - 1.
    """
    return max(degree + 2, math.ceil((degree + 7) / 2))


class Reference(AbstractNumerics):
    """The seed's numerics, as weight tables indexed per case.

    Build with `reference_numerics(w, ...)`.  Tables are node-major (L, grids):
    `grid_index` picks each case's column, so one compiled function serves any
    mix of w, num_theta and domain.  Padding carries zero weight.
    """

    r: Float[Array | np.ndarray, "L grids"]
    simpson: Float[Array | np.ndarray, "L grids"]
    trapezoid: Float[Array | np.ndarray, "L grids"]
    stencil: Float[Array | np.ndarray, "3 L grids"]
    cos2: Float[Array | np.ndarray, "L grids"]
    sin2: Float[Array | np.ndarray, "L grids"]
    grid_index: Int[Array | np.ndarray, "..."]

    def select(self, indices):
        return eqx.tree_at(lambda n: n.grid_index, self, np.asarray(self.grid_index)[np.asarray(indices)])

    def point_axes(self):
        shared = jax.tree_util.tree_map(lambda _: None, self)
        return eqx.tree_at(lambda n: n.grid_index, shared, 0, is_leaf=lambda x: x is None)

    def repeat(self, count: int):
        return eqx.tree_at(lambda n: n.grid_index, self, np.repeat(np.asarray(self.grid_index), count))

    def unit_integrals(self, profile, w, R_c) -> UnitIntegrals:
        # Tables may be host (NumPy) arrays; index them as JAX arrays so this
        # works eagerly, under jit and with the tables closed over alike.
        tab = jax.tree_util.tree_map(jnp.asarray, self)
        i = jnp.broadcast_to(tab.grid_index, R_c.shape)
        r = tab.r[:, i]  # (L, ...): batch arrays broadcast against it as they are
        R = R_c + w
        one = jnp.ones_like(R)
        delta_rho = profile.delta_rho(r, R_c, w, one)
        st = tab.stencil[:, :, i]
        before = jnp.concatenate([delta_rho[:1], delta_rho[:-1]], 0)
        after = jnp.concatenate([delta_rho[1:], delta_rho[-1:]], 0)
        slope = st[0] * before + st[1] * delta_rho + st[2] * after
        a, b = flow.hill_vortex_coefficients(r, R, one)
        flow_d, deficit_d, stab_d, grad_d = point_densities(
            r, delta_rho, slope, a, b, tab.cos2[:, i], tab.sin2[:, i]
        )
        simpson, trapezoid = tab.simpson[:, i], tab.trapezoid[:, i]
        return unit_integrals(jnp.sum(simpson * flow_d, 0), jnp.sum(simpson * deficit_d, 0),
                              jnp.sum(trapezoid * stab_d, 0), jnp.sum(trapezoid * grad_d, 0))


TABLE_LENGTH_MULTIPLE = 128
TABLE_MIN_GRIDS = 16


def reference_numerics(
    w,
    num_theta=None,
    spec: SeedGridSpec = SeedGridSpec(),
    r_min=None,
    r_max=None,
) -> Reference:
    """Seed numerics for the boundary thicknesses `w` (scalar or any shape).

    Parameters
    ----------
    w : float or array_like
    num_theta : int or array_like, optional
    spec : SeedGridSpec
    r_min, r_max : float or array_like, optional

    Returns
    -------
    Reference
        Weight tables for `lepton_energies(..., numerics=...)`.

    Notes
    -----
    Grids depend only on (w, r_min, r_max, num_theta) and the spec's knobs, never
    on the trial R_c, so one table column per distinct combination is built on
    the host and shared.  `num_theta`, `r_min`, `r_max` default to the spec's
    values and may vary per case (they broadcast against w).
    """
    w = np.asarray(w, dtype=np.float64)
    shape = w.shape
    full = lambda v, default: np.broadcast_to(np.asarray(default if v is None else v, np.float64), shape)
    keys = np.stack(
        [w.ravel(), full(r_min, spec.r_min).ravel(), full(r_max, spec.r_max).ravel(),
         full(num_theta, spec.num_theta).ravel()], -1
    )
    unique, index = np.unique(keys, axis=0, return_inverse=True)
    grids = [
        seed_radial_grid(wi, dataclasses.replace(spec, r_min=float(lo), r_max=float(hi)))
        for wi, lo, hi, _ in unique
    ]
    num_thetas = [int(k[3]) for k in unique]
    # The tables' shapes are kernel shapes.  Padded to buckets (the grid count to a
    # power of two, at least TABLE_MIN_GRIDS; the nodes to a multiple of
    # TABLE_LENGTH_MULTIPLE), points with new w -- an interval refit's trial
    # points, another chunk -- reuse compiled kernels instead of compiling one per
    # distinct table shape (the interval refits of a cold 16x10 seed-numerics scan:
    # 5.9 s instead of 24 s, measured).  Padding columns repeat grid 0 and are never
    # indexed; padding nodes carry zero weight.
    count = max(TABLE_MIN_GRIDS, 1 << max(len(grids) - 1, 0).bit_length())
    grids += [grids[0]] * (count - len(grids))
    num_thetas += [num_thetas[0]] * (count - len(num_thetas))
    table = seed_grid_table(grids, num_thetas, spec, length_multiple=TABLE_LENGTH_MULTIPLE)
    return Reference(
        r=table.r.T.copy(),
        simpson=table.simpson.T.copy(),
        trapezoid=table.trapezoid.T.copy(),
        stencil=np.ascontiguousarray(np.transpose(table.stencil, (2, 1, 0))),
        cos2=table.cos2.T.copy(),
        sin2=table.sin2.T.copy(),
        grid_index=index.reshape(shape),
    )
