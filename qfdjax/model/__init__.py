"""The model: a boundary-layer density deficit on Hill's spherical vortex, and its energies.

constants (targets, sigma, seed bounds, Golden-Loop beta, lambda calibration),
profiles (density families), flow (Hill vortex), quadrature (Gauss rules, the
seed's grid), numerics (exact and reference strategies), energy (the public
`lepton_energies`), types (result containers).  Nothing here imports from the
fitting or scan layers.  The public names are re-exported by `qfdjax`; this
file imports nothing, so plain constants can be read without loading JAX.
"""
