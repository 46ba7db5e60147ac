"""A scan's result: the scan record (a dict, as saved in scan.json) with arrays shaped (n_beta, n_w).

`ScanResult.load(dir)` reads a finished scan directory back; `to_pandas()`
gives one row per point (needs pandas, which qfdjax does not require).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError


class ScanResult(dict):
    @classmethod
    def load(cls, directory) -> "ScanResult":
        path = Path(directory) / "scan.json"
        try:
            return cls(json.loads(path.read_text()))
        except FileNotFoundError:
            raise InputError(f"dir = {str(directory)!r} has no scan.json: not a finished scan") from None
        except ValueError as err:
            raise InputError(f"dir = {str(directory)!r}: scan.json cannot be read ({err})") from None

    @property
    def beta(self) -> np.ndarray:
        return np.asarray(self["beta"], float)

    @property
    def w(self) -> np.ndarray:
        return np.asarray(self["w"], float)

    @property
    def chi2(self) -> np.ndarray:
        """(n_beta, n_w) chi^2_min."""
        return np.asarray(self["chi2"], float)

    @property
    def params(self) -> np.ndarray:
        """(n_beta, n_w, n_params) best-fit parameters, in the order of `param_names`."""
        return np.asarray(self["params"], float)

    @property
    def S(self) -> np.ndarray:
        return np.asarray(self["S"], float)

    @property
    def converged(self) -> np.ndarray:
        return np.asarray(self["convergence"]["converged"], bool)

    @property
    def verdict(self) -> dict:
        return self.get("verdict", {})

    def to_dict(self) -> dict:
        return dict(self.items())

    def to_pandas(self):
        """One row per grid point: beta, w, chi2, S, converged and the parameters."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("ScanResult.to_pandas needs pandas: pip install pandas") from None
        B, W = np.meshgrid(self.beta, self.w, indexing="ij")
        columns = {"beta": B.ravel(), "w": W.ravel(), "chi2": self.chi2.ravel(), "S": self.S.ravel(),
                   "converged": self.converged.ravel()}
        columns |= {name: self.params[..., k].ravel() for k, name in enumerate(self["param_names"])}
        return pd.DataFrame(columns)

    def __repr__(self) -> str:
        return (f"ScanResult({self.chi2.shape[0]} x {self.chi2.shape[1]} points, chi2_min = {np.nanmin(self.chi2):.10g}, "
                f"path {self.verdict.get('path', '?')})")
