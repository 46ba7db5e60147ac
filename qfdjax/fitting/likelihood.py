"""Profiled likelihood of the lepton masses, with room for more observables.

The global mass scale S is profiled analytically: for fixed energies E the
chi^2 is quadratic in S, so S* = Σ m E/σ² / Σ E²/σ² exactly.  An extra
observable (a g-factor term, say) is an `AbstractObservable` that adds residuals
given the model's state; its nuisance constants are profiled inside it.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..model.types import Energies
from ..model.constants import LEPTONS, MASSES_MEV, SIGMA_MODEL

# A residual this many ulps of its datum is rounding (see `Likelihood.chi2_rounding_floor`).
ROUNDING_ULPS = 1000


class ModelState(eqx.Module):
    """What observables may look at: per-lepton parameters, energies, the scale."""

    R_c: Float[Array, "... n"]
    U: Float[Array, "... n"]
    A: Float[Array, "... n"]
    w: Float[Array, "..."]
    energies: Energies
    S: Float[Array, "..."]


class AbstractObservable(eqx.Module):
    @classmethod
    def for_leptons(cls, leptons) -> "AbstractObservable":
        """The observable for a fit of these leptons (override when it needs per-lepton data)."""
        return cls()

    @abc.abstractmethod
    def residuals(self, state: ModelState) -> Float[Array, "... k"]:
        """Standardised residuals (model - data)/sigma."""

    def summary(self, state: ModelState) -> dict:
        return {}

    # --- its data, as a flat vector (pseudo-experiments replace it lane by lane) ---
    def data(self) -> np.ndarray:
        """The measured values this observable compares with (host NumPy; none by default)."""
        return np.zeros(0)

    def data_sigma(self) -> np.ndarray:
        """The sigma of each entry of `data()` (the toy generator draws N(prediction, sigma))."""
        return np.zeros(0)

    def prediction(self, state: ModelState):
        """The model's value for each entry of `data()` (profiled constants applied)."""
        return jnp.zeros(jnp.shape(state.S) + (0,))

    def with_data(self, values) -> "AbstractObservable":
        """This observable comparing with `values` (same layout as `data()`) instead."""
        return self

    def data_size(self) -> int:
        """len(data()), from shapes only: it is asked while the observable's arrays are being traced."""
        return 0

    def data_count(self) -> int:
        """Measured values this observable adds (its residuals that are not masked out)."""
        return 0

    def profiled_count(self) -> int:
        """Nuisance constants it profiles analytically (each one absorbs a datum)."""
        return 0

    def log_curvature(self, state: ModelState):
        """log of d²chi²/dc²/2 for each constant c it profiles: what integrating c out under a flat prior
        adds to -2 log L (a Gaussian integral).  Zero when it profiles none; override when it does."""
        if self.profiled_count():
            raise NotImplementedError(f"{type(self).__name__} profiles constants but does not say their "
                                      f"curvature: posteriors need log_curvature()")
        return jnp.zeros(jnp.shape(state.S))


def profile_scale(E, masses, sigma):
    """S* minimising Σ ((S E - m)/σ)² for fixed E (weighted least squares)."""
    weights = 1.0 / sigma**2
    return jnp.sum(masses * E * weights, -1) / jnp.sum(E * E * weights, -1)


class MassTerm(eqx.Module):
    """Masses m_l = S* E_l with sigma_l = sigma_model * m_l.

    `reference` are the masses that set sigma (the measured ones): a pseudo-experiment replaces
    `masses` by its toy data and keeps sigma, so every toy is judged with the data's own errors.
    """

    masses: Float[Array | np.ndarray, " n"]
    sigma_model: float = SIGMA_MODEL
    reference: Float[Array | np.ndarray, " n"] | None = None

    @property
    def sigma(self):
        return self.sigma_model * (self.masses if self.reference is None else self.reference)

    def scale(self, E):
        return profile_scale(E, self.masses, self.sigma)

    def residuals(self, E, S):
        return (jnp.expand_dims(S, -1) * E - self.masses) / self.sigma

    def residuals_and_jacobian(self, E, dE):
        """Residuals at S* and their Jacobian, given the energies E (leptons,) and their derivatives dE
        (leptons, n), written out: with weights v = 1/sigma^2 and D = sum v E^2,
        dS*/dE_j = v_j (m_j - 2 S* E_j) / D, so dr_i/dE_j = (S* delta_ij + E_i dS*/dE_j) / sigma_i.
        A masses-only fit's whole Jacobian in one small product instead of one tangent per parameter
        pushed through the profiled scale."""
        sigma = self.sigma
        weights = 1.0 / (sigma * sigma)
        S = self.scale(E)
        dS_dE = weights * (self.masses - 2.0 * S * E) / jnp.sum(E * E * weights, -1)
        dr_dE = jnp.diag(S / sigma) + (E / sigma)[:, None] * dS_dE[None, :]
        return self.residuals(E, S), dr_dE @ dE


_RESIDUAL_COUNTS: dict = {}


class Likelihood(eqx.Module):
    """chi^2 = mass term + any extra observables, all as residual vectors."""

    mass: MassTerm
    extras: tuple[AbstractObservable, ...] = ()

    @classmethod
    def masses_only(cls, leptons=LEPTONS, sigma_model: float = SIGMA_MODEL, masses=None) -> "Likelihood":
        all_masses = dict(zip(LEPTONS, MASSES_MEV, strict=True))
        m = masses if masses is not None else [all_masses[lep] for lep in leptons]
        # NumPy, not jnp: building a likelihood on the host must not dispatch to a device.
        m = np.asarray(m, dtype=np.float64)
        return cls(MassTerm(m, sigma_model, m.copy()))

    def state(self, R_c, U, A, w, energies: Energies) -> ModelState:
        S = self.mass.scale(energies.total)
        return ModelState(R_c, U, A, w, energies, S)

    def residual_count(self) -> int:
        """len(residuals), from shapes only (traced, not run; remembered per structure and shapes: a trace
        is 1.5 ms, 0.1 s of a 64 x 64 scan's fits): an observable may add residuals without data (a
        prior), so it is not len(data())."""
        import jax

        leaves, treedef = jax.tree_util.tree_flatten(self)
        key = (treedef, tuple(np.shape(leaf) for leaf in leaves))
        if key not in _RESIDUAL_COUNTS:
            lepton = jax.ShapeDtypeStruct((int(np.size(self.mass.masses)),), jnp.float64)

            def residuals(R_c, U, A, E):
                return self.residuals(self.state(R_c, U, A, jnp.zeros((), E.dtype), Energies(E, E, E)))

            _RESIDUAL_COUNTS[key] = int(jax.eval_shape(residuals, lepton, lepton, lepton, lepton).shape[-1])
        return _RESIDUAL_COUNTS[key]

    def data_count(self) -> int:
        return int(np.size(self.mass.masses)) + sum(obs.data_count() for obs in self.extras)

    def profiled_count(self) -> int:
        return 1 + sum(obs.profiled_count() for obs in self.extras)  # S*, then each observable's own

    # --- the data as one flat vector: masses first (e, mu, tau order), then each observable's ---
    def data(self) -> np.ndarray:
        return np.concatenate([np.asarray(self.mass.masses, float)] + [np.asarray(o.data(), float)
                                                                       for o in self.extras])

    def data_sigma(self) -> np.ndarray:
        return np.concatenate([np.asarray(self.mass.sigma, float)] + [np.asarray(o.data_sigma(), float)
                                                                      for o in self.extras])

    def chi2_rounding_floor(self, data=None) -> np.ndarray:
        """The chi^2 under which a fit to `data` (..., k) is exact to rounding: every residual within
        ROUNDING_ULPS of its datum, sum_i (ROUNDING_ULPS eps |d_i| / sigma_i)^2 (1.5e-17 for the masses).

        Why so many ulps: exact fits of the seed's toys end their LM runs anywhere from 1e-25 to 4e-19
        (residuals up to ~70 ulps of the masses: the model's own rounding, measured); 1000 ulps is still
        2e-9 of a sigma per residual."""
        data = self.data() if data is None else np.asarray(data, float)
        return np.sum((ROUNDING_ULPS * np.finfo(np.float64).eps * data / self.data_sigma()) ** 2, axis=-1)

    def data_names(self, leptons) -> list[str]:
        names = [f"m_{lep}" for lep in leptons]
        for obs in self.extras:
            names += [f"{getattr(obs, 'name', type(obs).__name__)}_{lep}" for lep in leptons][: np.size(obs.data())]
        return names

    def predictions(self, state: ModelState):
        """The model's value for every entry of `data()`: S* E, then each observable's."""
        parts = [jnp.expand_dims(state.S, -1) * state.energies.total] + [o.prediction(state) for o in self.extras]
        return jnp.concatenate(parts, -1)

    def with_data(self, values) -> "Likelihood":
        """This likelihood comparing with `values` (the layout of `data()`); sigma stays the data's own.

        Works on traced arrays: a kernel gives every lane its own pseudo-data this way."""
        n = self.mass.masses.shape[0]
        mass = eqx.tree_at(lambda m: m.masses, self.mass, values[..., :n])
        extras, start = [], n
        for obs in self.extras:
            size = obs.data_size()
            extras.append(obs.with_data(values[..., start:start + size]))
            start += size
        return Likelihood(mass, tuple(extras))

    def residuals(self, state: ModelState):
        parts = [self.mass.residuals(state.energies.total, state.S)]
        parts += [obs.residuals(state) for obs in self.extras]
        return jnp.concatenate(parts, -1)

    def marginal_chi2(self, state: ModelState):
        """-2 log L with S and every observable's profiled constant integrated out under flat priors, up to a
        constant: chi²_min + log Σ E²/σ² + each observable's own log curvature (Gaussian integrals)."""
        sigma = self.mass.sigma
        curvature = jnp.log(jnp.sum(state.energies.total**2 / sigma**2, -1))
        curvature = curvature + sum(obs.log_curvature(state) for obs in self.extras)
        return jnp.sum(self.residuals(state) ** 2, -1) + curvature

    def terms(self, state: ModelState) -> dict:
        """chi^2 of each term by name (mass first), plus each observable's profiled constants."""
        out = {"chi2_mass": jnp.sum(self.mass.residuals(state.energies.total, state.S) ** 2, -1)}
        for obs in self.extras:
            out[f"chi2_{getattr(obs, 'name', type(obs).__name__)}"] = jnp.sum(obs.residuals(state) ** 2, -1)
            out.update(obs.summary(state))
        return out
