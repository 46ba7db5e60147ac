"""`qfdjax merge` of toy parts (`toys ... --toys A:B` on several hosts): one toys run, exactly.

Toy k's data, starts and fits depend on (seed, k) only, so parts run anywhere combine into the
same arrays as one run; the summary (p-value, coverage, bound fractions) is recomputed from them.
Parts must be of one run (same point, truth, settings, seed and n) and cover 0..n once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError

# What may differ between parts of one run: their range, sizes, files, timings, metadata and summaries.
PART_KEYS = {"toy_range", "n", "n_valid", "timings", "files", "integrity", "created", "versions", "device", "host",
             "x64", "chunk"}


def _identity(record: dict) -> dict:
    config = dict(record["config"], toys={k: v for k, v in record["config"]["toys"].items() if k != "part"})
    return {"config": config, **{k: record[k] for k in ("beta", "w", "lam", "numerics", "observables", "seed",
                                                         "n_total", "truth", "prediction", "sigma", "chi2_observed")}}


def merge_toys(directories, out) -> dict:
    """The toys.json record (with "arrays") of the parts in `directories` joined, written to `out`."""
    from ..fitting.params import ParameterSpace
    from ..integrity import read_sealed_json
    from ..io import load_npz
    from .toy_output import write_toys
    from .toy_summary import summarize_toys

    parts = []
    for directory in directories:
        d = Path(directory)
        record = read_sealed_json(d / "toys.json", f"{d}/toys.json", files={"toys_npz": d / "toys.npz"})
        if "toy_range" not in record:
            raise InputError(f"{d}/toys.json was written by an older qfdjax (no toy range): rerun it")
        parts.append((record["toy_range"], record, load_npz(d / "toys.npz"), str(d)))
    parts.sort(key=lambda p: p[0][0])
    first = _identity(parts[0][1])
    for _, record, _, where in parts[1:]:
        if _identity(record) != first:
            differs = [k for k in first if _identity(record)[k] != first[k]]
            raise InputError(f"{where} is part of another toys run than {parts[0][3]} (differs in "
                             f"{', '.join(differs)}): only parts of one run merge")
    n = first["n_total"]
    edge = 0
    for (start, stop), _, _, where in parts:
        if start != edge:
            raise InputError(f"toy parts leave toys {edge}:{start} out or overlap there ({where} starts at {start}): "
                             f"they must cover 0:{n} once")
        edge = stop
    if edge != n:
        raise InputError(f"toy parts end at toy {edge}: they must cover 0:{n}")
    arrays = {k: np.concatenate([p[2][k] for p in parts]) for k in parts[0][2]}
    record = dict(parts[0][1])
    for key in PART_KEYS & set(record):
        record.pop(key)
    config = record["config"]
    leptons = tuple(dict.fromkeys(name.split(".")[0] for name in config["bounds"]))
    space = ParameterSpace.seed(leptons).with_overrides(config["bounds"], shared=config.get("shared") or [])
    free = [name for name, fixed in zip(space.names, space.fixed, strict=True) if not fixed]
    record |= summarize_toys(arrays, record["chi2_observed"], record["ndf"], space.names, free,
                             tuple(config["toys"]["coverage"]))
    seconds = sum(p[1]["timings"]["toys_s"] for p in parts)
    record |= {"n": n, "toy_range": [0, n], "merged_from": [p[3] for p in parts],
               "timings": {"toys_s": seconds, "per_toy_ms": 1e3 * seconds / n}}
    record["arrays"] = arrays
    summary = write_toys(record, out)
    summary["arrays"] = arrays
    return summary
