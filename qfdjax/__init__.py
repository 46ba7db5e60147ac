"""qfdjax: differentiable fits of the QFD lepton vortex model in JAX."""

import jax

# float64 must be on before any array is created on any device.
jax.config.update("jax_enable_x64", True)

from .constants import GOLDEN_LOOP_BETA, LEPTONS, MASSES_MEV, lambda_from_eta  # noqa: E402
from .energy import Energies, lepton_energies  # noqa: E402
from .numerics import AbstractNumerics  # noqa: E402
from .numerics import Exact, Reference, reference_numerics  # noqa: E402
from .profiles import AbstractProfile, BoundaryLayer  # noqa: E402
from .quadrature import SeedGridSpec, seed_radial_grid  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "GOLDEN_LOOP_BETA",
    "LEPTONS",
    "MASSES_MEV",
    "lambda_from_eta",
    "Energies",
    "lepton_energies",
    "AbstractNumerics",
    "Exact",
    "Reference",
    "reference_numerics",
    "AbstractProfile",
    "BoundaryLayer",
    "SeedGridSpec",
    "seed_radial_grid",
]
