"""Extra observables beside the masses, each one small module.

An observable turns the model's state (per-lepton parameters, energies, the
profiled mass scale S*) into standardised residuals; any constant it needs is
profiled analytically inside it.  To add one, subclass `AbstractObservable`,
give it a `name`, and list it in `OBSERVABLES` so the CLI can select it.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from typing import Self

import numpy as np
from jaxtyping import Array, Float

from ..errors import InputError, check_positive
from .likelihood import AbstractObservable, Likelihood, ModelState

# Measured g-factors (CODATA/PDG values as used by the project's design).
G_TARGETS = {"e": 2.00231930436256, "mu": 2.0023318414}
# The tau's g is not measured to this precision; g-2 experiments only bound it.  For
# fits that want a tau term, the Standard-Model prediction a_tau = 1.17721e-3
# (Eidelman & Passera, Mod. Phys. Lett. A 22 (2007) 159), i.e. g = 2(1 + a_tau),
# is available by name; it is never used unless asked for ("--observables mass,g_tau").
G_TAU_STANDARD_MODEL = 2.0 * (1.0 + 1.17721e-3)


class MagneticMoment(AbstractObservable):
    """g-factors from the vortex's magnetic moment, with the scale C_g profiled.

    mu_l = k Q R_shell U with R_shell = R_c + w; x_l = mu_l / (m_l / m_e) where
    m_l = S* E_l is the profiled model mass; g_model = C_g* x with
    C_g* = Σ g x / σ² / Σ x² / σ² (weighted least squares, exact for fixed x).
    Leptons without a target (tau) are masked out.
    """

    targets: Float[Array | np.ndarray, " n"]
    used: Float[Array | np.ndarray, " n"]  # 1 where the lepton has a g target
    k: float = 0.2
    charge: float = 1.0
    electron_mass: float = 0.511
    sigma_g: float = 1e-3
    name: str = eqx.field(static=True, default="g")

    @classmethod
    def for_leptons(cls, leptons, targets=None, **constants) -> Self:
        table = dict(G_TARGETS, **(targets or {}))
        if not any(lep in table for lep in leptons):
            raise InputError(f"observable g needs a lepton with a g target ({', '.join(table)}); got "
                             f"{', '.join(leptons)}")
        values = np.array([table.get(lep, 0.0) for lep in leptons])
        used = np.array([1.0 if lep in table else 0.0 for lep in leptons])
        return cls(values, used, **constants)

    def data_count(self) -> int:
        return int(np.sum(np.asarray(self.used)))

    def profiled_count(self) -> int:
        return 1  # C_g

    def moment_ratio(self, state: ModelState):
        moment = self.k * self.charge * (state.R_c + jnp.expand_dims(state.w, -1)) * state.U
        mass = jnp.expand_dims(state.S, -1) * state.energies.total
        return moment / (mass / self.electron_mass)

    def scale(self, x):
        weights = self.used / self.sigma_g**2
        return jnp.sum(self.targets * x * weights, -1) / jnp.sum(x * x * weights, -1)

    def residuals(self, state: ModelState):
        x = self.moment_ratio(state)
        C = self.scale(x)
        return self.used * (jnp.expand_dims(C, -1) * x - self.targets) / self.sigma_g

    def log_curvature(self, state: ModelState):
        # chi² is quadratic in C_g with curvature Σ x²/σ² (x at S*: S's own width, 1e-4 relative, is neglected).
        x = self.moment_ratio(state)
        return jnp.log(jnp.sum(self.used * x * x / self.sigma_g**2, -1))

    def summary(self, state: ModelState) -> dict:
        x = self.moment_ratio(state)
        C = self.scale(x)
        return {"C_g": C, "g_model": jnp.expand_dims(C, -1) * x}

    def data(self) -> np.ndarray:
        return np.asarray(self.targets, float)

    def data_sigma(self) -> np.ndarray:
        # A lepton without a target is masked out of the residuals: its entry never counts.
        return np.full(np.shape(self.targets), self.sigma_g)

    def prediction(self, state: ModelState):
        x = self.moment_ratio(state)
        return jnp.expand_dims(self.scale(x), -1) * x

    def with_data(self, values) -> "MagneticMoment":
        return eqx.tree_at(lambda o: o.targets, self, values)

    def data_size(self) -> int:
        return int(np.shape(self.targets)[0])


class MagneticMomentWithTau(MagneticMoment):
    """The g term with the tau's Standard-Model g as its third target (see G_TAU_STANDARD_MODEL)."""

    name: str = eqx.field(static=True, default="g_tau")

    @classmethod
    def for_leptons(cls, leptons, targets=None, **constants) -> Self:
        return super().for_leptons(leptons, dict({"tau": G_TAU_STANDARD_MODEL}, **(targets or {})), **constants)


OBSERVABLES = {"g": MagneticMoment, "g_tau": MagneticMomentWithTau}
"""Extra observables by the name `--observables` and `build_likelihood` accept ("mass" is always there).

A new observable (an `AbstractObservable` with a `name` and a `for_leptons` constructor) becomes
selectable from the command line once it is added here: `OBSERVABLES["name"] = MyObservable`.
"""


def build_likelihood(leptons, observables=("mass",), sigma_model=None, masses=None, sigmas=None) -> Likelihood:
    """The mass term plus the named extra observables for these leptons.

    Parameters
    ----------
    leptons : sequence of str
        The fitted leptons, from ("e", "mu", "tau").
    observables : sequence of str
        "mass" and any of OBSERVABLES ("g": measured g-factors of e and mu; "g_tau": with tau's
        Standard-Model g as a target).
    sigma_model : float, optional
        Relative mass tolerance (default 1e-4, the seed's).
    masses : sequence of float, optional
        Target masses in MeV (default the seed's).
    sigmas : dict, optional
        {term: sigma} overriding a term's sigma -- "mass": sigma_model (relative), "g" or "g_tau":
        sigma_g (absolute) -- for forecasts ("how well would g_tau have to be known?").

    Returns
    -------
    Likelihood
    """
    sigmas = dict(sigmas or {})
    for term, value in sigmas.items():
        if term not in observables:
            raise InputError(f"sigma for {term!r}: not among the observables {', '.join(observables)}")
        check_positive(f"sigma {term}", value)
    if "mass" in sigmas:
        sigma_model = float(sigmas["mass"])
    if isinstance(observables, str) or not all(isinstance(o, str) for o in observables):
        raise InputError(f"observables = {observables!r} is invalid: must be a list of names such as ['mass', 'g']")
    observables = tuple(observables)
    if len(set(observables)) != len(observables):
        raise InputError(f"observables = {','.join(observables)} names one twice: each term counts once")
    if "mass" not in observables:
        raise InputError(f"observables = {','.join(observables)} must include mass: S* is defined by the masses")
    unknown = [o for o in observables if o != "mass" and o not in OBSERVABLES]
    if unknown:
        raise InputError(f"observables = {','.join(observables)}: unknown {', '.join(unknown)}; "
                         f"available: mass, {', '.join(OBSERVABLES)}")
    kwargs = {} if sigma_model is None else {"sigma_model": sigma_model}
    base = Likelihood.masses_only(leptons, masses=masses, **kwargs)
    extras = tuple(OBSERVABLES[o].for_leptons(leptons, **({"sigma_g": float(sigmas[o])} if o in sigmas else {}))
                   for o in observables if o != "mass")
    return Likelihood(base.mass, extras)
