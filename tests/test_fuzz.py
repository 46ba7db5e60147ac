"""Generated bad input across the commands and the public API (issue 20, item 8).

Every generated case holds at least one value outside the model's domain or
of the wrong type; each must end with exit status 2 and one line on stderr (CLI)
or an InputError (API), quickly, and write nothing.  Hypothesis draws the cases;
its database is kept out of the repository and its run is bounded for CI.
"""

import json
import math
import time

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import qfdjax  # noqa: E402
from qfdjax.cli import main  # noqa: E402
from qfdjax.errors import InputError  # noqa: E402

FUZZ = settings(max_examples=100, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

GOOD = {"beta": 3.1, "w": 0.015, "R_c": 0.5, "U": 0.1, "A": 0.9}
# For each input, values outside its domain (beta > 0, w > 0, R_c > 0, U >= 0, 0 <= A <= 1, all <= 1e30).
# Positive but below 1e-30, subnormals included (1e-320: its reciprocal is inf).
TINY = st.floats(min_value=5e-324, max_value=9.9e-31)
BAD = {
    "beta": st.one_of(st.floats(max_value=0.0), st.floats(min_value=1e31), st.just(math.nan), st.just(math.inf), TINY),
    "w": st.one_of(st.floats(max_value=0.0), st.floats(min_value=1e31), st.just(math.nan), TINY),
    "R_c": st.one_of(st.floats(max_value=0.0), st.floats(min_value=1e31), st.just(math.nan), TINY),
    "U": st.one_of(st.floats(max_value=-1e-300), st.floats(min_value=1e31), st.just(math.inf)),
    "A": st.one_of(st.floats(max_value=-1e-300), st.floats(min_value=1.0000001), st.just(math.nan)),
    "lam": st.one_of(st.floats(max_value=-1e-300), st.floats(min_value=1e31), st.just(math.nan)),
}
NOT_NUMBERS = st.one_of(st.text(max_size=5), st.booleans(), st.none(), st.lists(st.integers(), max_size=2),
                        st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))


def _one_line_exit_2(capsys, argv, tmp_path):
    before = sorted(p.name for p in tmp_path.rglob("*"))
    start = time.perf_counter()
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, (argv, err)
    assert err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    assert time.perf_counter() - start < 30.0
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    return err


@FUZZ
@given(field=st.sampled_from(sorted(BAD)), data=st.data())
def test_energy_cli_refuses_values_outside_the_domain(capsys, tmp_path, field, data):
    value = data.draw(BAD[field])
    values = dict(GOOD, lam=0.01)
    values[field] = value
    argv = ["energy"] + [x for k, v in values.items() for x in (f"--{k.replace('_', '-')}", repr(float(v)))]
    _one_line_exit_2(capsys, argv + ["--out", str(tmp_path / "e.json")], tmp_path)


@FUZZ
@given(field=st.sampled_from(["beta", "w", "lam"]), data=st.data())
def test_fit_cli_refuses_globals_outside_the_domain(capsys, tmp_path, field, data):
    values = {"beta": 3.1, "w": 0.015, "lam": 0.01}
    values[field] = data.draw(BAD[field])
    argv = ["fit"] + [x for k, v in values.items() for x in (f"--{k}", repr(float(v)))]
    _one_line_exit_2(capsys, argv + ["--out", str(tmp_path / "f.json")], tmp_path)


@FUZZ
@given(field=st.sampled_from(sorted(GOOD)), data=st.data())
def test_energy_cases_file_refuses_bad_entries(capsys, tmp_path, field, data):
    junk = data.draw(st.one_of(NOT_NUMBERS, BAD[field]))
    case = dict(GOOD)
    case[field] = junk
    path = tmp_path / "cases.json"
    try:
        path.write_text(json.dumps([case]))
    except ValueError:
        return
    before = path.read_text()
    status = main(["energy", "--cases", str(path), "--out", str(tmp_path / "out.json")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err, (case, err)
    assert not (tmp_path / "out.json").exists() and path.read_text() == before


@FUZZ
@given(key=st.sampled_from(["beta", "w", "eta", "r_max", "power_s", "leptons", "observables", "fit",
                            "neighbour_passes", "numerics", "w_spacing", "bounds", "shared"]),
       junk=st.one_of(NOT_NUMBERS, st.floats(allow_nan=True, allow_infinity=True)))
def test_scan_config_refuses_junk_in_every_field(key, junk):
    try:
        qfdjax.ScanConfig.from_dict({key: junk})
    except InputError:
        return
    # Accepted: then it must be a value the field really allows (a number where a number goes, or an empty
    # table of bounds or shared groups: nothing overridden).
    if key in ("bounds", "shared") and junk in ({}, []):
        return
    assert key in ("eta", "r_max", "power_s") and isinstance(junk, (int, float)) and math.isfinite(junk)


@FUZZ
@given(beta=st.one_of(NOT_NUMBERS, BAD["beta"]))
def test_fit_api_refuses_bad_beta(beta):
    with pytest.raises(InputError):
        qfdjax.fit(beta, 0.015)


@FUZZ
@given(eta=st.one_of(st.floats(min_value=1e31), st.floats(max_value=-1e-300), st.just(math.nan)))
def test_an_eta_outside_its_domain_or_overflowing_lambda_is_refused(capsys, tmp_path, eta):
    _one_line_exit_2(capsys, ["fit", "--beta", "3.1", "--w", "0.015", "--eta", repr(eta),
                              "--out", str(tmp_path / "f.json")], tmp_path)


@FUZZ
@given(term=st.sampled_from(["mass", "g_tau"]),
       sigma=st.one_of(TINY, st.floats(max_value=0.0), st.floats(min_value=1e31), st.just(math.nan)))
def test_a_sigma_outside_its_domain_is_refused_before_any_fit(capsys, tmp_path, term, sigma):
    _one_line_exit_2(capsys, ["forecast", "--beta", "3.1", "--w", "0.015", "--observables", "mass,g_tau",
                              "--sigma", f"{term}={sigma!r}", "--out", str(tmp_path / "f.json")], tmp_path)


@FUZZ
@given(flag=st.sampled_from(["--de-maxiter", "--starts", "--seed"]),
       value=st.one_of(st.integers(min_value=10**23), st.integers(max_value=-1),
                       st.text(alphabet="0123456789.eE+-xa ", min_size=1, max_size=6)))
def test_counts_too_large_or_of_the_wrong_type_are_one_line(capsys, tmp_path, flag, value):
    allowed = {"--de-maxiter": (1, 10**8), "--starts": (1, 2**53), "--seed": (0, 2**63 - 1)}[flag]
    try:
        number = int(str(value))
    except ValueError:
        number = None
    if number is not None and allowed[0] <= number <= allowed[1]:
        return  # a valid count (the text strategy can draw one)
    argv = ["fit", "--beta", "3.1", "--w", "0.015", "--method", "de", flag, str(value), "--out", str(tmp_path / "f.json")]
    _one_line_exit_2(capsys, argv, tmp_path)


@pytest.mark.parametrize("argv", [
    ["fit", "--beta", "3.1", "--w", "0.015", "--profile-span", "2"],
    ["fit", "--beta", "3.1", "--w", "0.015", "--profile-points", "5"],
    ["fit", "--beta", "3.1", "--w", "0.015", "--w-bounds", "0.01", "0.02"],
    ["fit", "--beta", "3.1", "--w", "0.015", "--free", "w", "--beta-bounds", "3", "3.2"],
    ["fit", "--beta", "3.1", "--w", "0.015", "--cl", "0.9"],
    ["fit", "--beta", "3.1", "--w", "0.015", "--bounds", ""],
    ["energy", "--beta", "3.1", "--w", "0.01", "--R-c", "1", "--U", "0.05", "--A", "0.9", "--out", ""],
    ["report", "DIR", "--fc-seed", "3"],
    ["report", "DIR", "--fc-points", "0:4"],
    ["report", "DIR", "--fc-chunk", "4"],
    ["fit", "--beta", "abc", "--w", "0.015"],
    ["report", "DIR", "--fc", "nan"],
    ["fit", "--free", "beta", "--beta", "3.1", "--w", "0.015", "--beta-bounds", "3.5", "4"],
])
def test_flags_that_would_do_nothing_and_type_errors_are_one_line(capsys, tmp_path, argv):
    argv = [str(tmp_path / "d") if a == "DIR" else a for a in argv]
    assert "np.float64" not in _one_line_exit_2(capsys, argv, tmp_path)
