"""`qfdjax verify PATH`: is a results file or directory exactly what qfdjax wrote?

Every results record carries a seal (`qfdjax.integrity`); a scan directory also ties
scan.json to scan.npz and keeps its Feldman-Cousins chunks with checksums.  This reads
one back the way `report` and the loaders do and says what it holds, or refuses in one
line naming what does not match -- so a results file can be checked before it is
quoted, shared or merged.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError


def add_verify(sub):
    p = sub.add_parser("verify", help="check that a results file or directory is exactly what qfdjax wrote")
    p.add_argument("path", help="a scan or toys directory, or a fit/forecast/relax JSON file")
    p.set_defaults(run=_run_verify)


def _run_verify(args) -> int:
    print(f"verified: {verify_results(args.path)}")
    return 0


def _scan(directory: Path) -> str:
    from ..scans.result import read_scan_arrays, read_scan_record

    record = read_scan_record(directory, "dir")
    read_scan_arrays(directory, record)
    words = [f"scan of {len(record['beta'])} x {len(record['w'])} points {record['points'][0]}:{record['points'][1]}"]
    if "verdict" in record:
        words.append(f"verdict Path {record['verdict'].get('path')}")
    folder = directory / "fc"
    if folder.is_dir() and "fc" in record:
        import numpy as np

        from ..stats.fc_chunks import read_chunks

        fc = record["fc"]
        size = len(record["beta"]) * len(record["w"])
        t, valid, done = np.full((size, fc["toys"]), np.nan), np.zeros((size, fc["toys"]), bool), np.zeros(size, bool)
        problems: list[str] = []
        read_chunks(folder, fc["fingerprint"], t, valid, done, warn=problems.append)
        if problems:
            raise InputError(f"dir = {str(directory)!r}: {problems[0].removeprefix('qfdjax report: ')}")
        words.append(f"Feldman-Cousins chunks verified for {int(done.sum())} of {size} points")
    return ", ".join(words)


def verify_results(path) -> str:
    """One line saying what a verified results path holds; InputError (one line) if anything does not match."""
    from ..integrity import read_sealed_json

    path = Path(path)
    if path.is_dir():
        if (path / "scan.json").exists():
            return _scan(path)
        if (path / "toys.json").exists():
            record = read_sealed_json(path / "toys.json", "toys.json", files={"toys_npz": path / "toys.npz"})
            return (f"toys at beta = {record['beta']:.6g}, w = {record['w']:.6g}: {record['n']} toys, "
                    f"{record['n_valid']} certified (toys.json and toys.npz sealed)")
        if (path / "posterior.json").exists():
            record = read_sealed_json(path / "posterior.json", "posterior.json",
                                      files={"posterior_nc": path / "posterior.nc"})
            state = "certified" if record["summary"]["certified"] else "NOT certified"
            return (f"posterior at {record['where']}: {record['sampler']['chains']} chains x "
                    f"{record['sampler']['draws']} draws, {state} (posterior.json and posterior.nc sealed)")
        raise InputError(f"path = {str(path)!r} holds no scan.json, toys.json or posterior.json: not a qfdjax "
                         f"results directory")
    if not path.exists():
        raise InputError(f"path = {str(path)!r} does not exist")
    record = read_sealed_json(path, "results file")
    if "sigma_beta" in record or "forecast" in str(record.get("command", "")):
        return f"forecast record, sealed ({path.name})"
    if "chi2" in record and "params" in record:
        return f"fit at beta = {record.get('beta')}, w = {record.get('w')}: chi2 = {record['chi2']:.10g} (sealed)"
    return f"results record, sealed ({path.name})"
