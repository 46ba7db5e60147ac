"""`qfdjax.load(path)`: any results qfdjax wrote, back as the object the command's function returns.

A fit JSON becomes a `FitResult` that can refit itself (`minos()`, `profile()`): its bounds, sharing,
fit settings, numerics, observables and profile are all in the record, so no Python session of the
original run is needed.  A scan directory becomes a `ScanResult`, a toys directory a `ToysResult`, a
`sample` directory its posterior record with the draws; forecast, relax and compare files their
records.  Every seal and digest is checked first: an edited file is refused in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError


def load(path):
    """The results at `path` (a fit/forecast/relax/compare JSON, or a scan, toys or sample directory).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    FitResult, ScanResult, ToysResult or dict
        A fit JSON gives a `FitResult` able to refit (``minos()``, ``profile()``); a scan directory a
        `ScanResult`; a toys directory a `ToysResult`; a sample directory its posterior record with
        ``"draws"`` (chains, draws, parameters); other records as dicts.

    Raises
    ------
    qfdjax.errors.InputError
        A path that holds no qfdjax results, or whose seal or digests do not match its content.
    """
    from ..integrity import read_sealed_json

    path = Path(path)
    if path.is_dir():
        if (path / "scan.json").exists():
            from ..scans.result import ScanResult

            return ScanResult.load(path)
        if (path / "toys.json").exists():
            from ..io import load_npz
            from ..stats.toy_output import ToysResult

            record = read_sealed_json(path / "toys.json", "toys.json", files={"toys_npz": path / "toys.npz"})
            return ToysResult(record, load_npz(path / "toys.npz"))
        if (path / "posterior.json").exists():
            return _posterior(path)
        raise InputError(f"path = {str(path)!r} holds no scan.json, toys.json or posterior.json: not a qfdjax "
                         f"results directory")
    if not path.exists():
        raise InputError(f"path = {str(path)!r} does not exist")
    record = read_sealed_json(path, "results file")
    if "param_names" in record and "params" in record and "bounds" in record and "config" in record:
        return fit_from_record(record)
    return record


def _posterior(path: Path) -> dict:
    from ..bayes.summary import arviz_quietly
    from ..integrity import read_sealed_json

    record = read_sealed_json(path / "posterior.json", "posterior.json",
                              files={"posterior_nc": path / "posterior.nc"})
    draws = arviz_quietly().from_netcdf(str(path / "posterior.nc")).posterior
    record["draws"] = np.stack([draws[name].values for name in record["names"]], axis=-1)
    return record


def fit_from_record(record: dict):
    """A `FitResult` rebuilt from its JSON record, with what it needs to refit itself."""
    from ..fitting.fit import FitConfig
    from ..fitting.observables import build_likelihood
    from ..fitting.params import ParameterSpace
    from ..fitting.result import FitResult
    from ..model.profiles import make_profile
    from ..model.quadrature import SeedGridSpec

    leptons = tuple(dict.fromkeys(name.split(".")[0] for name in record["param_names"]))
    space = ParameterSpace.seed(leptons).with_overrides(record["bounds"], shared=record.get("shared") or [])
    if record.get("profile") not in ("boundary", None):
        raise InputError(f"this fit used the {record.get('profile')!r} density profile, whose parameters its record "
                         f"does not keep: it can be read (qfdjax.integrity.read_sealed_json) but not refitted")
    refit = dict(numerics=record["numerics"], config=FitConfig(**record["config"]),
                 spec=SeedGridSpec(r_max=record["r_max"]) if record.get("r_max") else SeedGridSpec(),
                 profile=make_profile("boundary", 2.0),
                 likelihood=build_likelihood(leptons, tuple(record.get("observables") or ("mass",))))
    return FitResult(record, context={"space": space, "refit": refit})
