"""Quadrature rules: Gauss-Legendre panels (exact numerics) and the seed's grid.

The seed's radial grid is rebuilt here in NumPy exactly as its code did it, and
turned into weight vectors so that its Simpson/trapezoid/finite-difference
numerics become dot products that jit and batch.  Grids of different length are
padded with zero weights to one common length.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from ..errors import MAX_NUM_THETA, InputError
from .constants import R_MAX_DEFAULT, R_MIN_DEFAULT


@functools.lru_cache(maxsize=None)
def gauss_legendre(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights on [0, 1]; exact for polynomials of degree <= 2*order-1."""
    x, w = np.polynomial.legendre.leggauss(order)
    return 0.5 * (x + 1.0), 0.5 * w


# Past this many radial points a single case's weight tables alone take gigabytes.
MAX_GRID_POINTS = 2_000_000


@dataclasses.dataclass(frozen=True)
class SeedGridSpec:
    """Every knob of the seed's 'smart' radial grid and angular rule.

    The seed refines around fixed guesses of R_c (not the trial R_c), with windows
    [g - below*w, g + above*w] sampled at dr_fine = w / dr_fine_factor and coarse
    spacing dr_coarse in between.
    """

    r_min: float = R_MIN_DEFAULT
    r_max: float = R_MAX_DEFAULT
    dr_coarse: float = 0.02
    dr_fine_factor: float = 25.0
    window_below: float = 2.0
    window_above: float = 3.0
    guesses: tuple[float, ...] = (0.13, 0.50, 0.88)
    min_fine_points: int = 50
    num_theta: int = 20
    theta_margin: float = 0.01
    denominator_eps: float = 1e-10

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name != "guesses" and not (isinstance(value, (int, float)) and not isinstance(value, bool)):
                raise InputError(f"{field.name} = {value!r} is invalid: must be a number")
        if not (isinstance(self.guesses, tuple) and all(
                isinstance(g, (int, float)) and not isinstance(g, bool) and np.isfinite(g) for g in self.guesses)):
            raise InputError(f"guesses = {self.guesses!r} is invalid: must be finite numbers")
        checks = [
            ("r_min", self.r_min, self.r_min >= 0, ">= 0"),
            ("r_max", self.r_max, self.r_max > self.r_min, f"> r_min = {self.r_min}"),
            ("dr_coarse", self.dr_coarse, self.dr_coarse > 0, "> 0"),
            ("dr_fine_factor", self.dr_fine_factor, self.dr_fine_factor > 0, "> 0"),
            ("window_below", self.window_below, self.window_below >= 0, ">= 0"),
            ("window_above", self.window_above, self.window_above >= 0, ">= 0"),
            ("min_fine_points", self.min_fine_points, self.min_fine_points >= 2, ">= 2"),
            ("num_theta", self.num_theta, self.num_theta >= 2, ">= 2"),
            ("theta_margin", self.theta_margin, 0 <= self.theta_margin < math.pi / 2, "in [0, pi/2)"),
            ("denominator_eps", self.denominator_eps, self.denominator_eps >= 0, ">= 0"),
        ]
        for name, value, ok, allowed in checks:
            if not (np.isfinite(value) and ok):
                raise InputError(f"{name} = {value!r} is invalid: must be {allowed}")
        if self.num_theta > MAX_NUM_THETA:
            raise InputError(f"num_theta = {self.num_theta!r} is out of range: must be <= {MAX_NUM_THETA}")
        points = self.grid_points_bound(w=1.0)
        if points > MAX_GRID_POINTS:
            raise InputError(
                f"the seed grid of these knobs (r_max = {self.r_max:g}, dr_coarse = {self.dr_coarse:g}, "
                f"dr_fine_factor = {self.dr_fine_factor:g}, min_fine_points = {self.min_fine_points}) would "
                f"need up to {points:.3g} radial points (about {points * 8 * 12 / 2**30:.2g} GiB of tables): "
                f"must give at most {MAX_GRID_POINTS:,}")

    def grid_points_bound(self, w: float) -> float:
        """An upper bound on the radial grid's size at thickness <= w (coarse plus every fine window)."""
        coarse = (self.r_max - self.r_min) / self.dr_coarse
        fine = max(self.min_fine_points, (self.window_below + self.window_above) * self.dr_fine_factor + 1)
        return coarse + len(self.guesses) * fine


def seed_radial_grid(w: float, spec: SeedGridSpec = SeedGridSpec()) -> np.ndarray:
    """The seed's radial grid for boundary thickness w (sorted, unique).

    Parameters
    ----------
    w : float
    spec : SeedGridSpec

    Returns
    -------
    numpy.ndarray

    Notes
    -----
    Coarse stretches use linspace(start, end, ceil(len/dr_coarse), endpoint=False),
    each window linspace(a, b, max(min_fine_points, ceil(len/dr_fine) + 1)), and the
    final stretch runs to r_max inclusive.  Reproduces the seed's grid sizes
    (e.g. 867 points at w = 0.015).
    """
    dr_fine = w / spec.dr_fine_factor
    parts = []
    cursor = spec.r_min
    for guess in spec.guesses:
        lo = max(spec.r_min, guess - spec.window_below * w)
        hi = min(spec.r_max, guess + spec.window_above * w)
        if lo > cursor:
            n = max(1, math.ceil((lo - cursor) / spec.dr_coarse))
            parts.append(np.linspace(cursor, lo, n, endpoint=False))
        n = max(spec.min_fine_points, math.ceil((hi - lo) / dr_fine) + 1)
        parts.append(np.linspace(lo, hi, n))
        cursor = max(cursor, hi)
    n = max(1, math.ceil((spec.r_max - cursor) / spec.dr_coarse))
    parts.append(np.linspace(cursor, spec.r_max, n))
    return np.unique(np.concatenate(parts))


def simpson_weights(x: np.ndarray) -> np.ndarray:
    """Weights of scipy.integrate.simpson(y, x=x) (SciPy >= 1.11) as a vector.

    Composite Simpson on irregular pairs of intervals; for an even number of
    points the last interval gets Cartwright's three-point correction, as SciPy
    does since 1.11.
    """
    n = x.size
    if n < 3:
        raise ValueError(f"Simpson's rule needs >= 3 points, got {n}")
    h = np.diff(x)
    weights = np.zeros(n)
    stop = n - 1 if n % 2 == 1 else n - 2  # intervals covered by pairs
    h0, h1 = h[0:stop:2], h[1:stop:2]
    hsum = h0 + h1
    first = np.arange(0, stop, 2)
    np.add.at(weights, first, hsum / 6.0 * (2.0 - h1 / h0))
    np.add.at(weights, first + 1, hsum / 6.0 * hsum * hsum / (h0 * h1))
    np.add.at(weights, first + 2, hsum / 6.0 * (2.0 - h0 / h1))
    if n % 2 == 0:
        ha, hb = h[-2], h[-1]
        weights[-1] += (2 * hb**2 + 3 * ha * hb) / (6 * (ha + hb))
        weights[-2] += (hb**2 + 3.0 * ha * hb) / (6 * ha)
        weights[-3] -= hb**3 / (6 * ha * (ha + hb))
    return weights


def trapezoid_weights(x: np.ndarray) -> np.ndarray:
    h = np.diff(x)
    weights = np.zeros(x.size)
    weights[:-1] += 0.5 * h
    weights[1:] += 0.5 * h
    return weights


def gradient_stencil(x: np.ndarray) -> np.ndarray:
    """Coefficients (c_minus, c_self, c_plus) of np.gradient(f, x), shape (n, 3).

    Second-order central differences on the irregular interior, first-order
    one-sided at both ends (NumPy's default edge_order=1).
    """
    h = np.diff(x)
    hs, hd = h[:-1], h[1:]
    stencil = np.zeros((x.size, 3))
    denom = hs * hd * (hs + hd)
    stencil[1:-1, 0] = -(hd**2) / denom
    stencil[1:-1, 1] = (hd**2 - hs**2) / denom
    stencil[1:-1, 2] = hs**2 / denom
    stencil[0] = (0.0, -1.0 / h[0], 1.0 / h[0])
    stencil[-1] = (-1.0 / h[-1], 1.0 / h[-1], 0.0)
    return stencil


def seed_angular_factors(
    r: np.ndarray, num_theta: int, margin: float = 0.01, eps: float = 1e-10
) -> tuple[np.ndarray, np.ndarray]:
    """The seed's theta rule for ∫ v^2 sin(theta) dtheta, per radius.

    theta = linspace(margin, pi - margin, N) is summed as a rectangle rule with
    d_theta = theta_1 - theta_0.  The seed took the velocity from the stream
    function, dividing by r^2 sin(theta) + eps and r sin(theta) + eps; that
    regularisation makes the factors depend weakly on r.  Returns (c(r), s(r))
    with ∫ v^2 sin = c a + s b; without eps they tend to 2/3 and 4/3.
    """
    theta = np.linspace(margin, np.pi - margin, num_theta)
    dtheta = theta[1] - theta[0]
    sin, cos = np.sin(theta)[None, :], np.cos(theta)[None, :]
    rr = np.asarray(r)[:, None]
    radial = (rr**2 * sin / (rr**2 * sin + eps)) ** 2
    polar = (rr * sin / (rr * sin + eps)) ** 2
    c = np.sum(cos * cos * sin * radial, axis=1) * dtheta
    s = np.sum(sin**3 * polar, axis=1) * dtheta
    return c, s


@dataclasses.dataclass(frozen=True)
class SeedGridTable:
    """Padded weight tables for several seed grids, one row per grid."""

    r: np.ndarray  # (n_grids, L); padding repeats the last radius so 1/r stays finite
    simpson: np.ndarray  # (n_grids, L)
    trapezoid: np.ndarray  # (n_grids, L)
    stencil: np.ndarray  # (n_grids, L, 3)
    cos2: np.ndarray  # (n_grids, L) angular factor of a(r)
    sin2: np.ndarray  # (n_grids, L) angular factor of b(r)
    num_points: np.ndarray  # (n_grids,)


def seed_grid_table(grids: list[np.ndarray], num_theta: list[int], spec: SeedGridSpec,
                    length_multiple: int = 1) -> SeedGridTable:
    """Tables for grids[i] with num_theta[i] angles, padded to a multiple of `length_multiple` nodes.

    Padding repeats a grid's last radius with zero weight.
    """
    length = -(-max(g.size for g in grids) // length_multiple) * length_multiple
    n = len(grids)
    r = np.empty((n, length))
    simpson, trapezoid, cos2, sin2 = (np.zeros((n, length)) for _ in range(4))
    stencil = np.zeros((n, length, 3))
    for i, (g, n_theta) in enumerate(zip(grids, num_theta, strict=True)):
        m = g.size
        r[i, :m] = g
        r[i, m:] = g[-1]
        simpson[i, :m] = simpson_weights(g)
        trapezoid[i, :m] = trapezoid_weights(g)
        stencil[i, :m] = gradient_stencil(g)
        cos2[i, :m], sin2[i, :m] = seed_angular_factors(
            g, n_theta, spec.theta_margin, spec.denominator_eps
        )
    return SeedGridTable(r, simpson, trapezoid, stencil, cos2, sin2, np.array([g.size for g in grids]))
