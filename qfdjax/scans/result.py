"""A scan's result: the scan record (as saved in scan.json) with arrays shaped (n_beta, n_w) and its figures.

`ScanResult.load(dir)` reads a finished scan directory back; `to_pandas()`
gives one row per point (needs pandas, which qfdjax does not require).
"""

from __future__ import annotations

from collections.abc import MutableMapping
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


class RecordView(MutableMapping):
    """A results record as a mapping (indexing reads or sets its keys) that is not itself a dict: the
    result classes (ScanResult, ToysResult) add their views and methods on top."""

    def __init__(self, record: dict):
        self._record = dict(record)

    def __getitem__(self, key):
        return self._record[key]

    def __setitem__(self, key, value):
        self._record[key] = value

    def __delitem__(self, key):
        del self._record[key]

    def __iter__(self):
        return iter(self._record)

    def __len__(self) -> int:
        return len(self._record)

    def to_dict(self) -> dict:
        """The record as saved (a copy of its top level)."""
        return dict(self._record)


class ScanResult(RecordView):
    """A scan: its JSON record (``r["verdict"]``, ``r["analysis"]``, ...) with array views and plots.

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

    ``plot_chi2_map(ax)``, ``plot_profiles(axes)``, ``plot_parameter_maps(fig)`` and ``plot_fc(axes)`` draw
    into what the caller gives and return it; ``plot_profile(name, ax)`` one profile; ``to_pandas()`` gives
    one row per point and ``ScanResult.load(dir)`` reads a saved scan back, verifying its digests.  Like
    `FitResult` it is not a dict: ``to_dict()`` is the record, and indexing reads (or sets) its keys.
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

    def _analysed(self) -> dict:
        if "analysis" not in self._record:
            raise InputError("this scan has no analysis (a partial scan, or run with analyse=False): nothing to draw")
        return self._record

    def plot_profile(self, name: str = "beta", ax=None):
        """The 1-D profile of beta or w with its minimum and Delta chi^2 = 1 and 4 ends, drawn into the
        caller's Axes (the current pyplot Axes when `ax` is None); returns the Axes."""
        from .profile_plots import draw_profile

        return draw_profile(_axes(ax), self._analysed(), name, decorate=False)

    def plot_profiles(self, axes=None):
        """Both 1-D profiles (beta, then w) into the caller's two Axes (new pyplot ones when None); returns them."""
        from .profile_plots import draw_profile

        record = self._analysed()
        if axes is None:
            import matplotlib.pyplot as plt

            _, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, name in zip(axes, ("beta", "w"), strict=True):
            draw_profile(ax, record, name, decorate=False)
        return axes

    def plot_chi2_map(self, ax=None):
        """The Delta chi^2 map with its contours, minimum and uncertified points, drawn into the caller's Axes
        only (the map is ``ax.collections[0]``, for a colour bar of the caller's); returns the Axes."""
        from .plots import draw_chi2_map

        return draw_chi2_map(_axes(ax), self._analysed())

    def plot_parameter_maps(self, fig=None):
        """S* and every parameter over the grid as panels of the caller's Figure (a new pyplot one when None)."""
        from .plots import draw_parameter_maps

        record = self._analysed()
        if fig is None:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=(16, 3.3 * int(np.ceil((1 + len(record["param_names"])) / 4))))
        return draw_parameter_maps(fig, record)

    def plot_fc(self, axes=None):
        """The Feldman-Cousins and Wilks regions at both CLs into the caller's two Axes (new pyplot ones when
        None); needs a scan with FC results (`qfdjax report DIR --fc N`)."""
        from .fc_plot import draw_fc

        record = self._analysed()
        if "fc" not in record:
            raise InputError("this scan has no Feldman-Cousins results: run qfdjax report DIR --fc N first")
        if axes is None:
            import matplotlib.pyplot as plt

            _, axes = plt.subplots(1, 2, figsize=(11, 4))
        return draw_fc(axes, record)

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


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt  # only here: the caller asked for pyplot's current Axes

        ax = plt.gca()
    return ax
