"""The seed's energy functional and fit, as its NumPy/SciPy code computed them."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..model.constants import MASSES_MEV, SEED_BOUNDS, SIGMA_MODEL, LEPTONS, PARAMS_PER_LEPTON
from ..model.quadrature import SeedGridSpec, seed_radial_grid


@dataclasses.dataclass(frozen=True)
class SeedEnergies:
    E_circ: float
    E_stab: float
    E_grad: float

    @property
    def total(self) -> float:
        return self.E_circ - self.E_stab + self.E_grad


def _delta_rho(r, R_c, w, A):
    R = R_c + w
    x = np.clip((r - R_c) / w, 0.0, 1.0)
    smooth = 6 * x**5 - 15 * x**4 + 10 * x**3
    taper = np.where(r <= R_c, 1.0, np.where(r <= R, 1.0 - smooth, 0.0))
    return -A * (1 - (r / R) ** 2) ** 2 * taper


def _velocity(r, theta, R, U, eps):
    """Hill-vortex velocity from its stream-function derivatives, as the seed did.

    The seed divided dpsi/dtheta by r^2 sin + eps and dpsi/dr by r sin + eps.
    """
    s, c = np.sin(theta), np.cos(theta)
    inside = r < R
    x = R**3 / r**3
    dpsi_dtheta = r**2 * s * c * np.where(inside, -(3 * U / R**2) * (R**2 - r**2), U * (1 - x))
    minus_dpsi_dr = r * s * s * np.where(inside, (3 * U / R**2) * r**2, -(U / 2) * (2 + x))
    return dpsi_dtheta / (r**2 * s + eps), minus_dpsi_dr / (r * s + eps)


def seed_energies(beta, w, lam, R_c, U, A, spec: SeedGridSpec = SeedGridSpec()) -> SeedEnergies:
    """One lepton's energies with the seed's grid and rules."""
    # SciPy is the `reference` extra: imported where it is used, so importing qfdjax.reference needs none.
    from scipy.integrate import simpson, trapezoid

    r = seed_radial_grid(w, spec)
    theta = np.linspace(spec.theta_margin, np.pi - spec.theta_margin, spec.num_theta)
    dtheta = theta[1] - theta[0]
    delta_rho = _delta_rho(r, R_c, w, A)
    rr, tt = np.meshgrid(r, theta, indexing="ij")
    v_r, v_theta = _velocity(rr, tt, R_c + w, U, spec.denominator_eps)
    density = 0.5 * (1.0 + delta_rho)[:, None] * (v_r**2 + v_theta**2) * rr**2 * np.sin(tt)
    E_circ = 2 * np.pi * simpson(np.sum(density, axis=1) * dtheta, x=r)
    E_stab = 4 * np.pi * beta * trapezoid(delta_rho**2 * r**2, r)
    E_grad = 4 * np.pi * lam * trapezoid(np.gradient(delta_rho, r) ** 2 * r**2, r)
    return SeedEnergies(float(E_circ), float(E_stab), float(E_grad))


def seed_chi2(params, beta, w, lam, spec: SeedGridSpec = SeedGridSpec(),
              masses=MASSES_MEV, sigma_model=SIGMA_MODEL) -> float:
    """The seed's profiled chi^2 for 9 parameters (e, mu, tau) x (R_c, U, A)."""
    p = np.asarray(params, dtype=np.float64).reshape(3, 3)
    energies = np.array([seed_energies(beta, w, lam, R_c, U, A, spec=spec).total for R_c, U, A in p])
    m = np.asarray(masses)
    weights = 1.0 / (sigma_model * m) ** 2
    S = np.sum(m * energies * weights) / np.sum(energies**2 * weights)
    return float(np.sum((S * energies - m) ** 2 * weights))


def seed_bounds_list():
    return [SEED_BOUNDS[lep][name] for lep in LEPTONS for name in PARAMS_PER_LEPTON]


def seed_fit_de(beta, w, lam, maxiter=200, popsize=15, seed=0, spec: SeedGridSpec = SeedGridSpec(),
                polish=False):
    """The seed's fit: SciPy differential evolution (best1bin) on seed_chi2."""
    from scipy.optimize import differential_evolution

    result = differential_evolution(
        seed_chi2, seed_bounds_list(), args=(beta, w, lam, spec), strategy="best1bin",
        maxiter=maxiter, popsize=popsize, mutation=(0.5, 1.0), recombination=0.7,
        seed=seed, polish=polish, tol=0.01,
    )
    return result
