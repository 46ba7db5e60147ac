"""A scan's result: the scan record (a dict, as saved in scan.json) with arrays shaped (n_beta, n_w).

`ScanResult.load(dir)` reads a finished scan directory back; `to_pandas()`
gives one row per point (needs pandas, which qfdjax does not require).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError


def read_scan_record(directory, what: str = "dir", verify: bool = True) -> dict:
    """scan.json of a scan directory, checked: a directory holding a regular scan.json whose top level
    is an object with the grid and chi^2, verified against its digest (digest.py) unless `verify` is False.
    Anything else is an InputError naming the directory and what is wrong."""
    import os

    from ..errors import read_json
    from .digest import verify as verify_digest

    shown = str(directory)
    if not os.path.isdir(shown):
        raise InputError(f"{what} = {shown!r} is not a directory: give a scan directory (holding scan.json)")
    path = Path(directory) / "scan.json"
    if not os.path.lexists(path):
        raise InputError(f"{what} = {shown!r} has no scan.json: not a finished scan")
    record = read_json(path, f"{what} scan.json")
    if not isinstance(record, dict):
        raise InputError(f"{what} = {shown!r}: scan.json is not a scan record (its top level is not an object)")
    for key in ("beta", "w", "chi2", "points", "config", "fingerprint"):
        if key not in record:
            raise InputError(f"{what} = {shown!r}: scan.json has no {key!r}: not a scan record")
    if verify:
        verify_digest(record, directory, what)
    return record


def read_scan_arrays(directory, record: dict, what: str = "dir") -> dict:
    """scan.npz of a verified scan directory, checked to describe the same points as its scan.json."""
    from ..io import load_npz
    from .digest import check_consistent

    shown = f"{what} = {str(directory)!r}"
    try:
        arrays = load_npz(Path(directory) / "scan.npz")
    except Exception as err:  # noqa: BLE001 - any unreadable file is refused by name
        raise InputError(f"{shown}: scan.npz cannot be read ({type(err).__name__})") from None
    for key in ("point_ids", "chi2"):
        if key not in arrays:
            raise InputError(f"{shown}: scan.npz has no {key!r}: not a scan's arrays")
    check_consistent(record, arrays, shown)
    return arrays


class ScanResult(dict):
    """A scan: its JSON record (a dict: ``r["verdict"]``, ``r["analysis"]``, ...) with array views.

    Attributes
    ----------
    beta, w : numpy.ndarray
        The grid's axes.
    chi2, S, converged : numpy.ndarray
        chi^2_min, the profiled scale S* and the convergence certificate per point, shaped (n_beta, n_w).
    params : numpy.ndarray
        Best-fit parameters, (n_beta, n_w, n_params), named by ``r["param_names"]``.
    verdict : dict
        Path A/B/C with its reasons.

    ``plot_profile(name, ax)`` draws a profile into the caller's Axes, ``to_pandas()`` gives one
    row per point and ``ScanResult.load(dir)`` reads a saved scan back, verifying its digests.
    No dict method is shadowed: ``keys()``, ``values()`` and ``items()`` are the record's.
    """

    @classmethod
    def load(cls, directory, verify: bool = True) -> "ScanResult":
        """A finished scan read back from its directory, verified against its digest (see digest.py)."""
        return cls(read_scan_record(directory, "dir", verify))

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

    def plot_profile(self, name: str = "beta", ax=None):
        """The 1-D profile of beta or w with its minimum and Delta chi^2 = 1 and 4 ends, drawn into the
        caller's Axes (the current pyplot Axes when `ax` is None); returns the Axes."""
        from .plots import draw_profile

        if "analysis" not in self:
            raise InputError("this scan has no analysis (a partial scan, or run with analyse=False): nothing to draw")
        if ax is None:
            import matplotlib.pyplot as plt  # only here: the caller asked for pyplot's current Axes

            ax = plt.gca()
        return draw_profile(ax, self, name)

    def to_pandas(self):
        """One row per grid point: beta, w, chi2, S, converged and the parameters."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("ScanResult.to_pandas needs pandas: pip install 'qfdjax[pandas]'") from None
        B, W = np.meshgrid(self.beta, self.w, indexing="ij")
        columns = {"beta": B.ravel(), "w": W.ravel(), "chi2": self.chi2.ravel(), "S": self.S.ravel(),
                   "converged": self.converged.ravel()}
        columns |= {name: self.params[..., k].ravel() for k, name in enumerate(self["param_names"])}
        return pd.DataFrame(columns)

    def __repr__(self) -> str:
        return (f"ScanResult({self.chi2.shape[0]} x {self.chi2.shape[1]} points, chi2_min = {np.nanmin(self.chi2):.10g}, "
                f"path {self.verdict.get('path', '?')})")
