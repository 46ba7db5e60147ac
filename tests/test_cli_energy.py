"""`qfdjax energy`: batch and single evaluation, and its input errors."""

import json
import subprocess
import sys

import pytest

from qfdjax.cli import main

GOOD = {"beta": 3.1, "w": 0.015, "lam": 0.0065, "R_c": 0.5, "U": 0.1, "A": 0.9}


def run(tmp_path, cases, *extra):
    src = tmp_path / "in.json"
    out = tmp_path / "out.json"
    src.write_text(cases if isinstance(cases, str) else json.dumps(cases))
    code = main(["energy", "--cases", str(src), "--out", str(out), *extra])
    return code, out


def test_batch_matches_reference_file(tmp_path, energy_cases):
    for numerics, pick in (("exact", lambda c: c["exact"]["E_total"]), ("reference", lambda c: c["E_total"])):
        code, out = run(tmp_path, energy_cases, "--numerics", numerics, "--chunk", "16")
        assert code == 0
        results = json.loads(out.read_text())
        assert len(results) == len(energy_cases)
        for got, case in zip(results, energy_cases, strict=True):
            assert got["beta"] == case["beta"] and got["R_c"] == case["R_c"]
            assert got["E_total"] == pytest.approx(pick(case), rel=1e-9)
            assert got["E_total"] == pytest.approx(got["E_circ"] - got["E_stab"] + got["E_grad"], rel=1e-12)


def test_lambda_defaults_to_eta_calibration(tmp_path):
    case = dict(GOOD)
    del case["lam"]
    code, out = run(tmp_path, [case])
    assert code == 0
    assert json.loads(out.read_text())[0]["lam"] == pytest.approx(0.03 * 3.1 * 0.88**2 / 11, rel=1e-15)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"w": 0.0}, "w"),
        ({"w": -0.01}, "w"),
        ({"A": 1.2}, "A"),
        ({"A": -0.1}, "A"),
        ({"R_c": 0.0}, "R_c"),
        ({"U": -0.1}, "U"),
        ({"r_max": 0.51}, "r_max"),
        ({"r_min": -0.01}, "r_min"),
        ({"beta": float("nan")}, "beta"),
        ({"U": float("inf")}, "U"),
        ({"num_theta": 1}, "num_theta"),
        ({"beta": "3.1"}, "beta"),
    ],
)
def test_bad_values_rejected(tmp_path, capsys, change, field):
    code, out = run(tmp_path, [GOOD, {**GOOD, **change}])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert not out.exists()
    assert len(err.splitlines()) == 1
    assert err.split("error: ")[1].startswith(field)
    assert "must be" in err and "case 1" in err


def test_unknown_numerics_and_malformed_json(tmp_path, capsys):
    code, out = run(tmp_path, [GOOD], "--numerics", "spline")
    assert code == 2 and not out.exists()
    assert "numerics = 'spline'" in capsys.readouterr().err
    code, out = run(tmp_path, "[{\"beta\": 3.1,")
    assert code == 2 and not out.exists()
    assert "not valid JSON" in capsys.readouterr().err
    code, out = run(tmp_path, [{"beta": 3.1}])
    assert code == 2 and "missing 'w'" in capsys.readouterr().err


def test_single_case_table(capsys):
    assert main(["energy", "--beta", "3.1", "--w", "0.015", "--R-c", "0.5", "--U", "0.1", "--A", "0.9"]) == 0
    text = capsys.readouterr().out
    assert "E_total" in text and "20.8051928893" in text


def test_module_entry_point_reports_errors():
    proc = subprocess.run(
        [sys.executable, "-m", "qfdjax", "energy", "--beta", "3.1", "--w", "0.015", "--R-c", "0.5",
         "--U", "0.1", "--A", "1.5"], capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "qfdjax energy: error: A = 1.5 (case 0) is out of range: must be >= 0 and <= 1"


def test_module_entry_point_leaves_complete_output(tmp_path):
    # The command leaves with os._exit (no interpreter teardown): everything it printed
    # and wrote must still be there, and its status must be the command's.
    out = tmp_path / "energy.json"
    proc = subprocess.run(
        [sys.executable, "-m", "qfdjax", "energy", "--beta", "3.1", "--w", "0.015", "--R-c", "0.5",
         "--U", "0.1", "--A", "0.9", "--out", str(out)], capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "20.8051928893" in proc.stdout and proc.stdout.endswith("\n")
    assert "20.8051928893" in out.read_text()
