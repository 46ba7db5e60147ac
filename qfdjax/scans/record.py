"""The scan record: grid, chi^2, parameters, evidence, config and metadata as JSON-ready values."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..io import run_metadata, write_text
from ..fitting.certificate import UNCERTIFIED_REASONS
from ..model.constants import lambda_from_eta

# A scan's figures, named in its record ("plots"); drawn by plots.py, in parallel by plot_pool.py.
FIGURE_NAMES = ("chi2_map", "profiles", "parameter_maps", "identifiability")
FIGURE_FORMATS = ("png", "pdf", "svg")


def figure_files(fmt: str = "png") -> dict[str, str]:
    """{figure name: file name} in one of FIGURE_FORMATS (raster for screens, vector for papers)."""
    if fmt not in FIGURE_FORMATS:
        raise InputError(f"format = {fmt!r} is unknown: must be one of {', '.join(FIGURE_FORMATS)}")
    return {name: f"{name}.{fmt}" for name in FIGURE_NAMES}


def scan_record(config, beta_axis, w_axis, s, point_range, space, refit, timings) -> dict:
    nb, nw = beta_axis.size, w_axis.size
    full = point_range == (0, nb * nw)
    shape = (nb, nw) if full else (-1,)
    names = space.names
    at_bound = s["at_lower"] | s["at_upper"]
    record = {
        "beta": beta_axis.tolist(),
        "w": w_axis.tolist(),
        "points": list(point_range),
        "param_names": list(names),
        "chi2": s["chi2"].reshape(shape).tolist(),
        "params": s["params"].reshape(shape + (len(names),) if full else (-1, len(names))).tolist(),
        "S": s["S"].reshape(shape).tolist(),
        "lam": lambda_from_eta(np.repeat(beta_axis, nw), config.eta)[point_range[0]:point_range[1]]
        .reshape(shape).tolist(),
        "convergence": {
            "converged": s["converged"].reshape(shape).tolist(),
            "starts_within_0.1": s["starts_within"].reshape(shape).tolist(),
            "projected_gradient_rel": s["projected_gradient"].reshape(shape).tolist(),
            "edm": s["edm"].reshape(shape).tolist(),
            "uncertified_reason": np.array([None if ok else UNCERTIFIED_REASONS[int(r)] for ok, r in
                                            zip(s["converged"], s["uncertified_reason"], strict=True)],
                                           dtype=object).reshape(shape).tolist(),
            "at_bounds": [[n for n, b in zip(names, row, strict=True) if b] for row in at_bound],
            "neighbour_refit": refit,
        },
        "config": config.to_dict(),
        "fingerprint": config.fingerprint(),
        "seeds": {"fit_seed": config.fit.seed, "per_point": "fold_in(PRNGKey(seed), flat point index)"},
        "timings": timings,
    }
    for key in s:
        if key.startswith("chi2_") and key not in ("chi2_starts", "chi2_spread"):
            record[key] = s[key].reshape(shape).tolist()
    record["beta_curvature"] = s["beta_curvature"].reshape(shape).tolist()
    record["beta_curvature_uncertainty"] = s["beta_curvature_uncertainty"].reshape(shape).tolist()
    if "C_g" in s:
        record["C_g"] = s["C_g"].reshape(shape).tolist()
    for key in ("dchi2_dbeta", "dchi2_dw"):
        if key in s:
            record[key] = s[key].reshape(shape).tolist()
    best = int(np.argmin(s["chi2"]))
    record["hessian_eigenvalues_at_min"] = [float(v) for v in s["hessian_eigenvalues"][best] if np.isfinite(v)]
    if "bound_cost_lower" in s:
        costs = {}
        for side in ("lower", "upper"):
            for name, value in zip(names, s[f"bound_cost_{side}"][best], strict=True):
                if np.isfinite(value):
                    costs[f"{name}.{side}"] = float(value)
        record["bound_costs_at_min"] = costs
        # Per point: the costs of all active bounds, by name (NaN where the bound is not active).
        record["bound_costs"] = {f"{n}.{side}": s[f"bound_cost_{side}"][:, k].reshape(shape).tolist()
                                 for side in ("lower", "upper") for k, n in enumerate(names)
                                 if np.isfinite(s[f"bound_cost_{side}"][:, k]).any()}
    record |= run_metadata()
    return record


def write_scan_csv(path, record: dict, summary: dict, point_ids) -> None:
    """One row per point: beta, w, chi2, S, converged and the parameters (spreadsheet- and pandas-ready)."""
    import csv
    import io

    nw = len(record["w"])
    names = record["param_names"]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["point", "beta", "w", "chi2", "S", "converged", *names])
    for k, pid in enumerate(point_ids):
        beta, w = record["beta"][int(pid) // nw], record["w"][int(pid) % nw]
        writer.writerow([int(pid), repr(beta), repr(w), repr(float(summary["chi2"][k])), repr(float(summary["S"][k])),
                         int(bool(summary["converged"][k])), *(repr(float(v)) for v in summary["params"][k])])
    write_text(path, text.getvalue())


def finish_report(record: dict, directory, figure_format: str = "png") -> dict:
    """A finished scan's record analysed (verdict included), its figures drawn -- the FC map too when it has
    Feldman-Cousins results -- and scan.json rewritten with its seal; returns the record (`report`'s last step)."""
    from pathlib import Path

    from ..runtime import spending
    from .analysis import analyse_scan
    from .digest import write_scan_json
    from .plots import plot_scan

    record["analysis"] = analyse_scan(record)
    record["verdict"] = record["analysis"]["verdict"]
    with spending("io"):
        record["plots"] = plot_scan(record, directory, figure_format)
        if "fc" in record:
            from .fc_plot import plot_fc

            plot_fc(record, Path(directory) / f"fc_map.{figure_format}")
            record["plots"]["fc_map"] = f"fc_map.{figure_format}"
    write_scan_json(Path(directory) / "scan.json", record)
    return record
