"""Merging partial scans run with point ranges on several hosts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import write_json, write_npz
from .config import ScanConfig
from .record import scan_record


def merge_scans(dirs, out_dir, *, analyse: bool = True) -> dict:
    """Merge partial scans (run with point ranges on several hosts) into one."""
    records, arrays = [], []
    for d in dirs:
        d = Path(d)
        try:
            records.append(json.loads((d / "scan.json").read_text()))
        except FileNotFoundError:
            raise InputError(f"scan directory {str(d)!r} has no scan.json (not finished?)") from None
        arrays.append(dict(np.load(d / "scan.npz")))
    fingerprints = {r["fingerprint"] for r in records}
    if len(fingerprints) != 1:
        raise InputError(f"scans to merge have different configurations: fingerprints {sorted(fingerprints)}")
    config = ScanConfig.from_dict(records[0]["config"])
    beta_axis, w_axis = config.axes()
    total = beta_axis.size * w_axis.size
    ids = np.concatenate([a["point_ids"] for a in arrays])
    if np.unique(ids).size != ids.size or ids.size != total:
        raise InputError(f"partial scans cover {np.unique(ids).size} distinct of {total} points "
                         f"({ids.size - np.unique(ids).size} duplicated): need each point exactly once")
    order = np.argsort(ids)
    keys = [k for k in arrays[0] if k not in ("beta_axis", "w_axis", "point_ids")]
    merged = {k: np.concatenate([a[k] for a in arrays])[order] for k in keys}
    timings = {"scan_s": sum(r["timings"]["scan_s"] for r in records), "merged_from": len(records)}
    record = scan_record(config, beta_axis, w_axis, merged, (0, total), config.space(),
                          {"passes": 0, "improved_points": 0, "max_improvement": 0.0}, timings)
    out = Path(out_dir)
    write_npz(out / "scan.npz", beta_axis=beta_axis, w_axis=w_axis, point_ids=np.arange(total), **merged)
    if analyse:
        from .analysis import analyse_scan
        from .plots import plot_scan

        record["analysis"] = analyse_scan(record)
        record["verdict"] = record["analysis"]["verdict"]
        record["plots"] = plot_scan(record, out)
    write_json(out / "scan.json", record)
    return record
