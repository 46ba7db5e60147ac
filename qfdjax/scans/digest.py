"""A finished scan's own digest: scan.json names the SHA-256 of scan.npz and of the numbers it holds.

Why: `report` redoes the verdict from scan.json and `merge` builds a grid
from parts; an edited χ² in scan.json flips a Path C into a Path B, and an
altered or permuted scan.npz moves the minimum, both with exit status 0.  The
digest is not a signature against a determined forger (anyone can recompute
it); it makes every accidental or casual change, and any mismatch between the
two files, a refusal naming what does not match.

Two digests in scan.json: `scan_json` covers every key that the scan wrote and
that `report` never rewrites — the grid, χ², parameters, convergence evidence,
config and fingerprint, metadata — so the scan's own numbers stay tied to
scan.npz however often `report` rewrites the rest; and the whole record's seal
(`qfdjax.integrity`, renewed at every write) covers everything else, the derived
`analysis`, `verdict`, `plots`, `profile_intervals`, `timings` and `fc` included.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..integrity import JsonPieces, file_digest, json_digest

DIGEST_KEY = "integrity"
# Keys that `report` (re)derives from the digested numbers, or that grow as a scan finishes.
DERIVED_KEYS = frozenset({DIGEST_KEY, "analysis", "verdict", "plots", "profile_intervals", "timings", "fc"})


def record_digest(record: dict, pieces: JsonPieces | None = None) -> str:
    """SHA-256 of the scan record's own numbers in canonical JSON (derived keys left out)."""
    if pieces is not None:
        return pieces.digest(record, [k for k in record if k not in DERIVED_KEYS])
    from ..io import _to_jsonable

    return json_digest(_to_jsonable({k: v for k, v in record.items() if k not in DERIVED_KEYS}))


def scan_pieces(record: dict) -> JsonPieces:
    """JSON forms of a finished scan's own numbers, made once for its digest and each write of scan.json:
    those keys are never changed once the scan has stamped them (DERIVED_KEYS are made anew each time)."""
    return JsonPieces(k for k in record if k not in DERIVED_KEYS)


def write_scan_json(path, record: dict, pieces: JsonPieces | None = None) -> None:
    """scan.json written with its whole-record seal renewed (every writer of scan.json goes through here)."""
    from ..integrity import write_sealed_json

    write_sealed_json(path, record, pieces)


def stamp(record: dict, npz_path, pieces: JsonPieces | None = None) -> dict:
    """The digest entry for a scan whose scan.npz has just been written."""
    return {"algorithm": "sha256", "scan_json": record_digest(record, pieces), "scan_npz": file_digest(npz_path)}


def verify(record: dict, directory, what: str = "dir", need_npz: bool = True) -> None:
    """Refuse (InputError, one line) a scan whose scan.json or scan.npz does not match its digest, or whose
    scan.json was edited anywhere -- derived keys (profile intervals, FC regions, the verdict) included:
    those are covered by the whole record's seal (`qfdjax.integrity`), renewed by each rewrite."""
    from ..integrity import check_seal

    where = f"{what} = {str(directory)!r}"
    entry = record.get(DIGEST_KEY)
    if not isinstance(entry, dict) or not isinstance(entry.get("scan_json"), str):
        raise InputError(f"{where}: scan.json carries no digest (written by an older qfdjax, or edited): its "
                         f"numbers cannot be verified; rerun the scan command into it (finished chunks resume)")
    try:
        actual = record_digest(record)
    except (TypeError, ValueError) as err:
        raise InputError(f"{where}: scan.json holds values that are not plain JSON numbers ({err})") from None
    if actual != entry["scan_json"]:
        raise InputError(f"{where}: scan.json does not match its digest: its numbers were edited after the scan "
                         f"wrote them; refusing to use them")
    # The scan's own numbers first (the more specific refusal), then everything derived from them.
    check_seal(record, f"{where}: scan.json")
    npz = Path(directory) / "scan.npz"
    if not need_npz and not npz.exists():
        return
    if not npz.is_file():
        raise InputError(f"{where}: scan.npz is missing beside scan.json")
    if file_digest(npz) != entry.get("scan_npz"):
        raise InputError(f"{where}: scan.npz does not match the digest in scan.json: it was altered or belongs to "
                         f"another scan")


def check_consistent(record: dict, arrays: dict, where: str) -> None:
    """scan.json and scan.npz describe the same points: ids in the record's range, equal χ²."""
    lo, hi = record["points"]
    ids = np.asarray(arrays.get("point_ids"))
    if ids.ndim != 1 or ids.size != hi - lo or not np.array_equal(np.sort(ids), np.arange(lo, hi)):
        raise InputError(f"{where}: scan.npz's point ids are not the points {lo}:{hi} that scan.json covers")
    if not np.array_equal(ids, np.arange(lo, hi)):
        raise InputError(f"{where}: scan.npz's point ids are permuted (not in point order)")
    chi2_json = np.asarray(record["chi2"], float).ravel()
    chi2_npz = np.asarray(arrays["chi2"], float)
    if chi2_json.shape != chi2_npz.shape or not np.array_equal(chi2_json, chi2_npz, equal_nan=True):
        raise InputError(f"{where}: scan.json's chi2 differs from scan.npz's: the two files do not belong together")
