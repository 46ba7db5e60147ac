"""Every results file is sealed: an edited key anywhere is refused in one line, or recomputed to the same numbers.

Issue 29: the digest of scan.json left out the profile intervals and the FC regions (an
edit printed "Path A" where the data say Path C), FC chunk files had no checksum, and the
fit, toys and forecast records had none.  Each test flips every key of one kind of file in
turn.
"""

import copy
import json
import shutil

import numpy as np
import pytest

from qfdjax.cli import main

GRID = ["--beta", "3.0", "3.2", "3", "--w", "0.01", "0.03", "2", "--starts", "3", "--no-progress"]


def _flip(value):
    """The same structure with its first leaf changed (a bool negated, a number moved, a string extended)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 2 + 1
    if isinstance(value, str):
        return value + "x"
    if value is None:
        return 0.5
    if isinstance(value, list):
        return [_flip(value[0]), *value[1:]] if value else [1.0]
    if isinstance(value, dict):
        if not value:
            return {"x": 1}
        first = next(iter(value))
        return {**value, first: _flip(value[first])}
    raise TypeError(type(value))


def _leaf_paths(record, depth=2, prefix=()):
    """Key paths to flip: every top-level key, and every key one level below in the derived sections."""
    for key, value in record.items():
        yield prefix + (key,)
        if depth > 1 and isinstance(value, dict) and key in ("profile_intervals", "fc", "analysis", "verdict"):
            yield from _leaf_paths(value, depth - 1, prefix + (key,))


def _edited(record, path):
    out = copy.deepcopy(record)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = _flip(node[path[-1]])
    return out


@pytest.fixture(scope="module")
def fc_scan(tmp_path_factory):
    out = tmp_path_factory.mktemp("sealed") / "scan"
    assert main(["scan", *GRID, "--out", str(out)]) == 0
    assert main(["report", str(out), "--fc", "12", "--fc-chunk", "2"]) == 0
    return out


def test_scan_json_every_key_edited_is_refused(fc_scan, tmp_path, capsys):
    record = json.loads((fc_scan / "scan.json").read_text())
    assert {"profile_intervals", "fc", "verdict", "analysis"} <= set(record)
    paths = list(_leaf_paths(record))
    assert len(paths) > 40
    out = tmp_path / "scan"
    shutil.copytree(fc_scan, out)
    capsys.readouterr()
    for path in paths:
        (out / "scan.json").write_text(json.dumps(_edited(record, path)))
        assert main(["report", str(out)]) == 2, path
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, (path, err)
        assert main(["verify", str(out)]) == 2, path
        capsys.readouterr()
    (out / "scan.json").write_text(json.dumps(record))
    assert main(["verify", str(out)]) == 0
    assert "Feldman-Cousins chunks verified for 6 of 6 points" in capsys.readouterr().out


def test_the_issues_forged_verdict_is_refused(fc_scan, tmp_path, capsys):
    """The issue's edit: the profile minimum and its interval moved to make the verdict Path A."""
    out = tmp_path / "scan"
    shutil.copytree(fc_scan, out)
    record = json.loads((out / "scan.json").read_text())
    record["profile_intervals"]["minimum"].update(chi2=0.5, beta=3.1)
    record["profile_intervals"]["beta"]["1"] = [3.05, 3.15]
    (out / "scan.json").write_text(json.dumps(record))
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert "scan.json does not match its seal" in err and "VERDICT" not in err


@pytest.mark.parametrize("damage", ["zero_t", "reverse_points", "drop_checksum", "other_valid"])
def test_an_edited_fc_chunk_is_named_and_refitted_to_the_same_numbers(fc_scan, tmp_path, capsys, damage):
    out = tmp_path / "scan"
    shutil.copytree(fc_scan, out)
    reference = json.loads((out / "scan.json").read_text())["fc"]
    target = sorted((out / "fc").glob("fc_*.npz"))[1]
    with np.load(target) as saved:
        arrays = dict(saved)
    if damage == "zero_t":
        arrays["t"] = np.zeros_like(arrays["t"])
    elif damage == "reverse_points":
        arrays["points"] = arrays["points"][::-1].copy()
    elif damage == "drop_checksum":
        arrays.pop("checksum")
    else:
        arrays["valid"] = ~arrays["valid"]
    np.savez(target, **arrays)
    assert main(["verify", str(out)]) == 2
    assert target.name in capsys.readouterr().err
    assert main(["report", str(out), "--fc", "12", "--fc-chunk", "2"]) == 0
    captured = capsys.readouterr()
    assert f"ignoring {target.name}" in captured.err
    again = json.loads((out / "scan.json").read_text())["fc"]
    for key in ("t_critical", "accepted", "valid_toys", "t_observed"):
        assert again[key] == reference[key], key


def _flip_every_key(path, capsys, argv):
    record = json.loads(path.read_text())
    original = path.read_text()
    assert main(argv) == 0
    capsys.readouterr()
    for key in record:
        path.write_text(json.dumps(_edited(record, (key,))))
        assert main(argv) == 2, key
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "does not match its seal" in err, (key, err)
    path.write_text(original)
    return record


def test_fit_and_forecast_records_every_key_edited_is_refused(tmp_path, capsys):
    fit = tmp_path / "fit.json"
    assert main(["fit", "--beta", "3.1", "--w", "0.015", "--out", str(fit)]) == 0
    _flip_every_key(fit, capsys, ["verify", str(fit)])
    forecast = tmp_path / "forecast.json"
    assert main(["forecast", "--beta", "3.1", "--w", "0.015", "--bounds",
                 "experiments/configs/identifiable_mu_tau_U.toml", "--out", str(forecast)]) == 0
    _flip_every_key(forecast, capsys, ["verify", str(forecast)])


def test_toys_records_and_arrays_are_sealed(tmp_path, capsys):
    out = tmp_path / "toys"
    assert main(["toys", "--beta", "3.1", "--w", "0.015", "--n", "8", "--out", str(out)]) == 0
    _flip_every_key(out / "toys.json", capsys, ["verify", str(out)])
    with np.load(out / "toys.npz") as saved:
        arrays = dict(saved)
    arrays["chi2"] = arrays["chi2"] * 2
    np.savez(out / "toys.npz", **arrays)
    assert main(["verify", str(out)]) == 2
    assert "toys.npz does not match the digest in its seal" in capsys.readouterr().err


def test_two_reports_on_one_directory_do_not_both_run(fc_scan, tmp_path, capsys):
    from qfdjax.scans.checkpoint import hold_directory

    out = tmp_path / "scan"
    shutil.copytree(fc_scan, out)
    before = (out / "scan.json").read_bytes()
    lock = hold_directory(out, "dir")  # as a running `report DIR --fc N` holds it
    try:
        assert main(["report", str(out), "--fc", "12", "--fc-chunk", "2"]) == 2
        err = capsys.readouterr().err
        assert "is in use by another qfdjax process" in err and err.count("\n") == 1
    finally:
        lock.close()
    assert (out / "scan.json").read_bytes() == before
    assert main(["report", str(out)]) == 0


def test_an_interrupt_lost_in_a_callback_prints_nothing_and_is_remembered(capsys):
    """CPython reports an exception raised in a __del__ or gc callback through sys.unraisablehook
    ("Exception ignored in ..." and a traceback); an interrupt there is remembered silently."""
    from qfdjax.runtime import interrupts_remembered

    class InterruptedOnCollection:
        def __del__(self):
            raise KeyboardInterrupt

    with interrupts_remembered() as received:
        InterruptedOnCollection()
        assert received
    err = capsys.readouterr().err
    assert "Exception ignored" not in err and "KeyboardInterrupt" not in err, err


def test_json_pieces_write_the_same_bytes_and_see_new_values(tmp_path):
    """scan.json written through JsonPieces (its own numbers converted once, for the digest and each write)
    is byte for byte what a plain write gives, and a derived key replaced or changed in place between writes
    is written as it is now."""
    from qfdjax.integrity import JsonPieces, check_seal, write_sealed_json
    from qfdjax.scans.digest import record_digest, scan_pieces

    rng = np.random.default_rng(3)
    record = {"chi2": rng.normal(size=(4, 3)), "params": rng.normal(size=(4, 3, 9)).tolist(), "label": "x",
              "convergence": {"steps": np.arange(12).reshape(4, 3), "nan": [float("nan"), 1.5]},
              "analysis": {"verdict": "C"}, "timings": {"wall": 1.0}}
    pieces = scan_pieces(record)
    assert isinstance(pieces, JsonPieces) and "chi2" in pieces.stable and "analysis" not in pieces.stable
    assert record_digest(record, pieces) == record_digest(record)
    for step in range(3):
        write_sealed_json(tmp_path / "with.json", record, pieces)
        plain = {k: v for k, v in record.items() if k != "integrity"}
        write_sealed_json(tmp_path / "plain.json", plain)
        assert (tmp_path / "with.json").read_bytes() == (tmp_path / "plain.json").read_bytes()
        check_seal(json.loads((tmp_path / "with.json").read_text()), "with.json")
        record["timings"]["wall"] = 2.0 + step  # changed in place: a derived key
        record["analysis"] = {"verdict": "B", "step": step}  # replaced
    assert json.loads((tmp_path / "with.json").read_text())["analysis"] == {"verdict": "B", "step": 1}
