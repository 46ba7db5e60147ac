"""Seals on results files: every JSON record qfdjax writes names the SHA-256 of its own content.

Why: a results file is read back -- `report` redoes a scan's verdict from scan.json,
`qfdjax verify` and the Python loaders read fits, toys and forecasts -- and an edited
number (a chi^2, an interval end, a critical value) would otherwise become a printed
result with exit status 0.  A seal covers every key of the record, derived ones
included (profile intervals, Feldman-Cousins regions, the verdict), and names the
digests of the binary files beside it (NPZ arrays), so a record and its arrays cannot
be mixed with another run's.

It is not a signature against a determined forger (anyone can recompute it); it turns
every accidental or casual change into a refusal naming the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import InputError

SEAL_KEY = "integrity"
# The entry in SEAL_KEY that holds the whole record's digest (the rest of SEAL_KEY is covered by it).
RECORD_DIGEST = "record"


def json_digest(data) -> str:
    """SHA-256 of plain JSON data (`io._to_jsonable`'s output) in canonical form: sorted keys, no spaces."""
    return hashlib.sha256(_canonical(data).encode()).hexdigest()


def canonical_digest(record: dict) -> str:
    """SHA-256 of a record's canonical JSON (the values as written), its own seal's digest left out."""
    from .io import _to_jsonable

    data = _to_jsonable(record)
    entry = data.get(SEAL_KEY)
    if isinstance(entry, dict):
        data[SEAL_KEY] = {k: v for k, v in entry.items() if k != RECORD_DIGEST}
    return json_digest(data)


def file_digest(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sealed(data: dict, files: dict) -> dict:
    """Plain JSON data with its seal set (in place): the digests of `files` {name: path} and of the whole."""
    entry = {k: v for k, v in (data.get(SEAL_KEY) or {}).items() if k != RECORD_DIGEST}
    entry["algorithm"] = "sha256"
    entry.update({name: file_digest(where) for name, where in files.items()})
    data[SEAL_KEY] = entry
    data[SEAL_KEY] = dict(entry, **{RECORD_DIGEST: json_digest(data)})
    return data


def seal(record: dict, **files) -> dict:
    """The record with its seal set (in place): the digests of `files` {name: path} and of the whole record."""
    from .io import _to_jsonable

    record[SEAL_KEY] = _sealed(_to_jsonable(record), files)[SEAL_KEY]
    return record


class JsonPieces:
    """A record's top-level values in their JSON forms (plain data, canonical text, laid-out text), each
    made once per value object: a record written more than once with the same big values -- a scan's
    scan.json before and after its figures, stamped before either -- converts, digests and lays them out
    once (three passes over 34 MB of numbers at 256 x 256 points instead of seven).

    `stable`: the keys whose values are never changed in place once converted (a new value object under
    the key is converted anew); every other key is converted at each use."""

    def __init__(self, stable):
        self.stable = frozenset(stable)
        self._made: dict = {}

    def forms(self, key: str, value) -> tuple:
        """(plain data, canonical JSON, laid-out JSON at depth 1) of record[key] = value."""
        from .io import _to_jsonable

        made = self._made.get(key)
        if made is not None and made[0] is value:
            return made[1:]
        data = _to_jsonable(value)
        forms = (data, _canonical(data), json_text(data, 1))
        if key in self.stable:
            self._made[key] = (value, *forms)
        return forms

    def digest(self, record: dict, keys=None) -> str:
        """json_digest of {k: record[k] for k in keys} (default: every key), from the pieces."""
        return _digest_of({k: self.forms(k, record[k]) for k in (record if keys is None else keys)})


def _digest_of(forms: dict) -> str:
    """json_digest of the record whose top-level values have these `JsonPieces.forms`."""
    text = "{" + ",".join(json.dumps(k) + ":" + forms[k][1] for k in sorted(forms)) + "}"
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(data) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=True)


def write_sealed_json(path, record: dict, pieces: JsonPieces | None = None, **files) -> None:
    """Write `record` as JSON with its seal (naming `files` {name: path}), atomically; the caller's record
    gets the seal too.  The record is turned into plain JSON values once, for the digest and the file
    alike: at 256 x 256 points that conversion is 3 s, and `seal` + `io.write_json` did it twice.
    `pieces`: the forms of values already converted for an earlier write or digest (`JsonPieces`)."""
    from .io import atomic_write_bytes
    from .runtime import spending

    with spending("io"):  # serialising a results file is part of writing it
        pieces = pieces or JsonPieces(())
        fields = record if isinstance(record, dict) else record.to_dict()  # a FitResult: its JSON record
        entry = {k: v for k, v in (fields.get(SEAL_KEY) or {}).items() if k != RECORD_DIGEST}
        entry["algorithm"] = "sha256"
        entry.update({name: file_digest(where) for name, where in files.items()})
        # The record digest covers every key, the seal's other entries included (as `_sealed`'s does); the
        # seal keeps its place among the keys (last where the record had none).
        body = {str(k): v for k, v in fields.items()} | {SEAL_KEY: entry}
        forms = {k: pieces.forms(k, v) for k, v in body.items()}
        body[SEAL_KEY] = entry = dict(entry, **{RECORD_DIGEST: _digest_of(forms)})
        forms[SEAL_KEY] = pieces.forms(SEAL_KEY, entry)
        record[SEAL_KEY] = dict(entry)
        items = (f"{json.dumps(k)}: {forms[k][2]}" for k in body)
        atomic_write_bytes(path, ("{\n " + ",\n ".join(items) + "\n}").encode())


def json_text(value, depth: int = 0) -> str:
    """JSON laid out for a reader -- one key per line, an array's rows one per line -- with every row of
    numbers written by json's C encoder: `indent=` switches json to its pure-Python encoder, which took
    2.4 s of a 256 x 256 scan.json's 3.5 s write and 0.6 s of a 64 x 64 one's."""
    pad = "\n" + " " * (depth + 1)
    if isinstance(value, dict) and value:
        items = (f"{json.dumps(str(k))}: {json_text(v, depth + 1)}" for k, v in value.items())
        return "{" + pad + ("," + pad).join(items) + "\n" + " " * depth + "}"
    # Lists in a record are homogeneous (rows of numbers, lists of rows, lists of records): the first
    # element says which -- testing every element of a 65,536-long row took longer than encoding it.
    if isinstance(value, list) and value and isinstance(value[0], (list, dict)):
        return "[" + pad + ("," + pad).join(json_text(v, depth + 1) for v in value) + "\n" + " " * depth + "]"
    return json.dumps(value)


def check_seal(record, what: str, files: dict | None = None) -> None:
    """Refuse (InputError, one line) a record whose content, or a named file beside it, does not match its seal."""
    entry = record.get(SEAL_KEY) if isinstance(record, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get(RECORD_DIGEST), str):
        raise InputError(f"{what} carries no seal (written by an older qfdjax, or edited): its numbers cannot be "
                         f"verified; rerun the command that wrote it")
    try:
        actual = canonical_digest(record)
    except (TypeError, ValueError) as err:
        raise InputError(f"{what} holds values that are not plain JSON ({err})") from None
    if actual != entry[RECORD_DIGEST]:
        raise InputError(f"{what} does not match its seal: it was edited after qfdjax wrote it; refusing to use it")
    for name, path in (files or {}).items():
        if not Path(path).is_file():
            raise InputError(f"{what}: {Path(path).name} is missing beside it")
        if file_digest(path) != entry.get(name):
            raise InputError(f"{what}: {Path(path).name} does not match the digest in its seal: it was altered or "
                             f"belongs to another run")


def read_sealed_json(path, what: str | None = None, files: dict | None = None) -> dict:
    """A results JSON file read back and checked against its seal (and the files it names)."""
    from .errors import read_json

    label = what or "results file"
    record = read_json(path, label)
    shown = f"{label} = {str(path)!r}"
    if not isinstance(record, dict):
        raise InputError(f"{shown} is not a qfdjax results record (its top level is not an object)")
    check_seal(record, shown, files)
    return record
