"""Physical targets, the seed's calibration and default bounds.

Everything here is a plain Python number or tuple so it can be used both inside
and outside of traced code without surprises.
"""

from __future__ import annotations

LEPTONS: tuple[str, ...] = ("e", "mu", "tau")
PARAMS_PER_LEPTON: tuple[str, ...] = ("R_c", "U", "A")

# Charged-lepton masses in MeV as used by the seed (rounded PDG values).
MASSES_MEV: tuple[float, ...] = (0.511, 105.7, 1776.8)
# Model tolerance: sigma_l = SIGMA_MODEL * m_l.
SIGMA_MODEL: float = 1e-4

# The "Golden Loop" value of beta that the seed hoped the profile would land on.
GOLDEN_LOOP_BETA: float = 3.043233053

# Gradient coefficient calibration: lambda = eta * beta * R_ref**2 / 11.
ETA_DEFAULT: float = 0.03
R_REF: float = 0.88

# Radial domain of the energy integrals.  The exterior Hill flow tends to a
# uniform stream, so E_circ grows like r_max**3: r_max is part of the model.
R_MIN_DEFAULT: float = 0.01
R_MAX_DEFAULT: float = 10.0

# Seed parameter bounds, order (e, mu, tau) x (R_c, U, A).
SEED_BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    "e": {"R_c": (0.5, 1.5), "U": (0.01, 0.10), "A": (0.7, 1.0)},
    "mu": {"R_c": (0.05, 0.30), "U": (0.05, 0.20), "A": (0.7, 1.0)},
    "tau": {"R_c": (0.30, 0.80), "U": (0.02, 0.15), "A": (0.7, 1.0)},
}

# The seed's scan grid.
SEED_BETA_RANGE: tuple[float, float, int] = (2.95, 3.25, 16)
SEED_W_RANGE: tuple[float, float, int] = (0.005, 0.05, 10)


def lambda_from_eta(beta, eta: float = ETA_DEFAULT, r_ref: float = R_REF):
    """The seed's calibration of the gradient coefficient, lambda = eta*beta*R_ref^2/11.

    Parameters
    ----------
    beta : float or array_like
    eta : float
        Calibration constant (default 0.03).
    r_ref : float
        Reference radius (default 0.88).

    Returns
    -------
    float or array_like
        lambda, shaped like `beta`.
    """
    return eta * beta * r_ref**2 / 11.0
