"""NumPy/SciPy implementation of the seed's method.

An independent oracle for the JAX code (it integrates on a full (r, theta) mesh
with SciPy's rules instead of precomputed weight vectors) and the CPU baseline
for benchmarks.  Nothing in the JAX package imports this module, so SciPy stays
an optional dependency.
"""

from .seed import SeedEnergies, seed_chi2, seed_energies, seed_fit_de

__all__ = ["SeedEnergies", "seed_energies", "seed_chi2", "seed_fit_de"]
