"""The result of one fit, in iminuit's idiom: values, errors, covariance and correlation by parameter name.

`FitResult` holds the fit's JSON record (`to_dict()`; `result["chi2"]` reads a
key of it) with attributes on top: `valid`, `chi2`, `values` and `errors` by
name, `covariance` and `correlation` as matrices indexable by names, `at_bounds`,
`minos` (asymmetric errors found by refitting), `to_pandas()`, and an HTML table
in Jupyter.  It is deliberately not a dict: `values` is the parameters, as in
iminuit, and `pandas.Series`/`dict()` are not confused by it.
"""

from __future__ import annotations

import math

import numpy as np


def delta_chi2_for(cl: float) -> float:
    """Delta chi^2 of a one-parameter interval at confidence level cl (1 at 0.6827, 4 at 0.9545)."""
    from ..errors import check_range

    check_range("cl", cl, lower=0.0, upper=1.0, lower_open=True, upper_open=True)
    lo, hi = 0.0, 40.0  # z with erf(z / sqrt 2) = cl, by bisection (NumPy has no erfinv)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if math.erf(mid / math.sqrt(2.0)) < cl else (lo, mid)
    return (0.5 * (lo + hi)) ** 2


class LabelledMatrix(np.ndarray):
    """A square matrix whose rows and columns are named: m["mu.U", "tau.U"] as well as m[4, 7]."""

    def __new__(cls, values, names):
        obj = np.asarray(values, dtype=np.float64).view(cls)
        obj.names = tuple(names)
        return obj

    def __array_finalize__(self, obj):
        self.names = getattr(obj, "names", ())

    def _index(self, key):
        if isinstance(key, str):
            return self.names.index(key)
        return key

    def __getitem__(self, key):
        if isinstance(key, tuple):
            key = tuple(self._index(k) for k in key)
        else:
            key = self._index(key)
        return np.asarray(self)[key]

    def _shown(self) -> list[int]:
        # Fixed and bound-held parameters have no entries (NaN): a table of them says nothing.
        values = np.asarray(self)
        if values.ndim != 2 or len(self.names) != values.shape[0]:
            return []
        return [k for k in range(values.shape[0]) if np.isfinite(values[k]).any()]

    def __repr__(self) -> str:
        shown = self._shown()
        if not shown:
            return super().__repr__()
        values = np.asarray(self)
        width = max(len(self.names[k]) for k in shown) + 2
        lines = [" " * width + "".join(f"{self.names[k]:>13}" for k in shown)]
        lines += [f"{self.names[i]:<{width}}" + "".join(f"{values[i, j]:>13.6g}" for j in shown) for i in shown]
        hidden = len(self.names) - len(shown)
        if hidden:
            lines.append(f"({hidden} fixed or bound-held parameters not shown: their entries are undefined)")
        return "\n".join(lines)


class FitResult:
    """One fit: the JSON record and its iminuit-style views (see the module docstring)."""

    __slots__ = ("_record", "_context")

    def __init__(self, record: dict, context: dict | None = None):
        self._record = dict(record)
        # How to refit this fit (its space and fit settings), for minos() and profile().
        self._context = dict(context or {})

    # --- the record ---
    def __getitem__(self, key):
        return self._record[key]

    def __setitem__(self, key, value):
        self._record[key] = value

    def __contains__(self, key) -> bool:
        return key in self._record

    def __ior__(self, other: dict) -> "FitResult":
        self._record.update(other)
        return self

    def get(self, key, default=None):
        return self._record.get(key, default)

    def to_dict(self) -> dict:
        """The fit's JSON record (what `qfdjax fit --out` writes)."""
        return dict(self._record)

    # --- iminuit-style views ---
    @property
    def valid(self) -> bool:
        """Certified converged: the optimiser stopped, EDM <= 1e-9 max(chi^2, 1), starts agree, finite results;
        with `--free`, the outer search over beta/w converged too."""
        free = self._record.get("free_globals")
        return bool(self._record["convergence"]["converged"]) and (free is None or bool(free.get("converged")))

    @property
    def chi2(self) -> float:
        return float(self._record["chi2"])

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(self._record["param_names"])

    @property
    def values(self) -> dict:
        """{name: value} of every parameter (fixed ones included)."""
        return dict(zip(self._record["param_names"], self._record["params"], strict=True))

    @property
    def errors(self) -> dict:
        """HESSE errors of the free, off-bound parameters ({} when their Hessian is singular)."""
        return dict(self._record.get("errors", {}))

    @property
    def covariance(self) -> LabelledMatrix | None:
        """Covariance over `parameters` (zero rows for fixed or on-bound parameters), indexable by names.

        None where it is undefined: no free parameter, or a singular Hessian (flat directions).
        """
        value = self._record.get("covariance")
        return None if value is None else LabelledMatrix(value, self.parameters)

    @property
    def correlation(self) -> LabelledMatrix | None:
        """Correlation coefficients (NaN rows for parameters without an error); None with no covariance."""
        cov = self.covariance
        if cov is None:
            return None
        sd = np.sqrt(np.clip(np.diag(np.asarray(cov)), 0.0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = np.asarray(cov) / np.outer(sd, sd)
        corr[sd == 0, :] = np.nan
        corr[:, sd == 0] = np.nan
        return LabelledMatrix(corr, self.parameters)

    @property
    def edm(self) -> float | None:
        """Minuit's EDM here: the chi^2 a Newton step on the movable parameters would still gain (certified: <=
        1e-9 max(chi^2, 1))."""
        value = self._record["convergence"].get("edm")
        return None if value is None else float(value)

    @property
    def nfcn(self) -> int:
        """LM steps summed over every start (a residual-and-Jacobian evaluation each), not Minuit's calls."""
        return int(sum(self._record["convergence"].get("steps", [])))

    @property
    def ndof(self) -> int | None:
        """Degrees of freedom of the goodness of fit: data minus identifiable free parameters (and S)."""
        value = self._record.get("identifiability", {}).get("degrees_of_freedom")
        return None if value is None else int(value)

    @property
    def limits(self) -> dict:
        """{name: (lower, upper)} of every parameter (a fixed one's are equal)."""
        return {name: (float(lo), float(hi)) for name, (lo, hi) in self._record.get("bounds", {}).items()}

    @property
    def fixed(self) -> dict:
        """{name: True/False}: fixed by its bounds (lower == upper), or a shared group's follower (it takes
        the group's first parameter's value)."""
        followers = {name for group in self._record.get("shared", []) for name in list(group)[1:]}
        return {name: lo == hi or name in followers for name, (lo, hi) in self.limits.items()}

    @property
    def at_bounds(self) -> dict:
        """{name: "lower" | "upper"} for parameters on a bound."""
        return dict(self._record.get("bound_side", {}))

    def minos(self, names=None, cl: float = 0.6827) -> dict:
        """{name: (lower, upper)} asymmetric errors by refitting (profile likelihood), at confidence level `cl`.

        names: parameters (default every free, off-bound one).  The results are also kept in the record
        ("minos", "minos_details").
        """
        from .minos import minos

        space = self._context.get("space")
        if space is None:
            from ..errors import InputError

            raise InputError("this FitResult was not made by qfdjax.fit: it cannot refit itself")
        if names is None:
            names = [n for n, f in zip(space.names, space.fixed, strict=True) if not f and n not in self.at_bounds]
        elif isinstance(names, str):
            names = [names]
        details = minos(self, list(names), space, level=delta_chi2_for(cl), **self._context.get("refit", {}))
        self._record["minos"] = {n: [d["lower"], d["upper"]] for n, d in details.items()}
        self._record["minos_details"] = details
        return {n: (d["lower"], d["upper"]) for n, d in details.items()}

    def profile(self, names, cl: float = 0.6827, points: int = 21, span: float = 3.0) -> dict:
        """Refitted profile of one parameter, or the map and contour of a pair.

        Parameters
        ----------
        names : str or sequence of str
            One parameter name ("mu.U") or two ("mu.U", "tau.U").
        cl : float
            Confidence level of the interval (one parameter) or contour (two), in (0, 1).
        points : int
            Refits per axis, 3..201.
        span : float
            Half-width of each axis in HESSE errors (cut by the bounds).

        Returns
        -------
        dict
            The profile record (axes, delta_chi2, and the interval or contour); also kept under
            "param_profile" in this result.
        """
        from .param_profile import parameter_profile

        space = self._context.get("space")
        if space is None:
            from ..errors import InputError

            raise InputError("this FitResult was not made by qfdjax.fit: it cannot refit itself")
        names = [names] if isinstance(names, str) else list(names)
        record = parameter_profile(self, names, space, cl=cl, points=points, span=span,
                                   **self._context.get("refit", {}))
        self._record["param_profile"] = record
        return record

    def plot_profile(self, names=None, ax=None, **profile_kwargs):
        """Draw the profile of `names` (computed by `profile` unless it is the last one computed) into `ax`.

        Parameters
        ----------
        names : str or sequence of str, optional
            As for `profile`; default the last profile computed.
        ax : matplotlib.axes.Axes, optional
            Where to draw (default: pyplot's current Axes); nothing is drawn outside it (no title or colour bar).
        **profile_kwargs
            Passed to `profile` when it has to be computed.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from .param_profile import draw_parameter_profile

        record = self._record.get("param_profile")
        wanted = None if names is None else ([names] if isinstance(names, str) else list(names))
        if record is None or (wanted is not None and record["parameters"] != wanted) or profile_kwargs:
            if wanted is None:
                from ..errors import InputError

                raise InputError("plot_profile needs parameter names: no profile has been computed yet")
            record = self.profile(wanted, **profile_kwargs)
        if ax is None:
            import matplotlib.pyplot as plt  # only here: the caller asked for pyplot's current Axes

            ax = plt.gca()
        return draw_parameter_profile(ax, record, decorate=False)

    def to_pandas(self):
        """One row per parameter: value, HESSE error, bounds, the side of an active bound, MINOS errors."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("FitResult.to_pandas needs pandas: pip install 'qfdjax[pandas]'") from None
        return pd.DataFrame(self._rows()).set_index("name")

    def _rows(self) -> list[dict]:
        bounds = self._record.get("bounds", {})
        minos = self._record.get("minos", {})
        rows = []
        for name, value in self.values.items():
            lo, hi = bounds.get(name, (math.nan, math.nan))
            m = minos.get(name, (None, None))
            rows.append({"name": name, "value": value, "error": self.errors.get(name), "minos_lower": m[0],
                         "minos_upper": m[1], "lower": lo, "upper": hi, "fixed": lo == hi,
                         "at_bound": self.at_bounds.get(name)})
        return rows

    def __repr__(self) -> str:
        state = "valid" if self.valid else "NOT valid"
        head = (f"FitResult(chi2={self.chi2:.10g}, {state}, at (beta, w) = ({self._record['beta']:g}, "
                f"{self._record['w']:g}))")
        lines = [head]
        for row in self._rows():
            error = "" if row["error"] is None else f" +- {row['error']:.3g}"
            note = " (fixed)" if row["fixed"] else f" (on its {row['at_bound']} bound)" if row["at_bound"] else ""
            lines.append(f"  {row['name']:<8} {row['value']:.8g}{error}{note}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """A parameter table for Jupyter, as iminuit shows one."""
        def number(value, fmt):
            return "" if value is None else format(value, fmt)

        state = "valid" if self.valid else "<b>NOT valid</b>"
        cells = []
        for r in self._rows():
            minos = "" if r["minos_lower"] is None else f"{r['minos_lower']:+.3g} / {r['minos_upper']:+.3g}"
            bound = "fixed" if r["fixed"] else (r["at_bound"] or "")
            cells.append(f"<tr><td>{r['name']}</td><td>{r['value']:.8g}</td><td>{number(r['error'], '.3g')}</td>"
                         f"<td>{minos}</td><td>{r['lower']:g}</td><td>{r['upper']:g}</td><td>{bound}</td></tr>")
        return (f"<table><caption>χ² = {self.chi2:.10g} ({state}) at β = {self._record['beta']:g}, "
                f"w = {self._record['w']:g}</caption><tr><th>parameter</th><th>value</th><th>HESSE error</th>"
                f"<th>MINOS</th><th>lower</th><th>upper</th><th>bound</th></tr>{''.join(cells)}</table>")
