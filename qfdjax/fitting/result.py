"""The result of one fit as an object a fitter's user expects (iminuit-style), still a plain dict.

`FitResult` *is* the JSON-ready record (a dict: every key of the fit JSON,
so `json.dump(result, ...)` and `result["chi2"]` work as before) with
attributes on top: `valid`, `chi2`, `values`, `errors`, `covariance`,
`at_bounds`, `minos`.  Note that `values` is the parameters by name, as in
iminuit, not `dict.values()`; use `to_dict()` for a plain dict.
"""

from __future__ import annotations

import numpy as np


class FitResult(dict):
    @property
    def valid(self) -> bool:
        """Certified converged: the optimiser stopped, small projected gradient, starts agree, finite results;
        with `--free`, the outer search over beta/w converged too."""
        free = self.get("free_globals")
        return bool(self["convergence"]["converged"]) and (free is None or bool(free.get("converged")))

    @property
    def chi2(self) -> float:
        return float(self["chi2"])

    @property
    def values(self) -> dict:  # noqa: D401 - iminuit's name, deliberately shadowing dict.values
        return dict(zip(self["param_names"], self["params"]))

    @property
    def errors(self) -> dict:
        """HESSE errors of the free, off-bound parameters ({} when their Hessian is singular)."""
        return dict(self.get("errors", {}))

    @property
    def covariance(self) -> np.ndarray | None:
        """Covariance over `param_names` (zero rows for fixed or on-bound parameters).

        None where it is undefined: no free parameter, or a singular Hessian (flat directions).
        """
        value = self.get("covariance")
        return None if value is None else np.asarray(value, float)

    @property
    def at_bounds(self) -> dict:
        """{name: "lower" | "upper"} for parameters on a bound."""
        return dict(self.get("bound_side", {}))

    @property
    def minos(self) -> dict:
        """{name: (lower, upper)} from `fit --minos` (lower negative, upper positive)."""
        return {k: tuple(v) for k, v in self.get("minos", {}).items()}

    def to_dict(self) -> dict:
        return dict(self.items())

    def __repr__(self) -> str:
        state = "valid" if self.valid else "NOT valid"
        return f"FitResult(chi2={self.chi2:.10g}, {state}, at (beta, w) = ({self['beta']:g}, {self['w']:g}))"
