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
BAD = {
    "beta": st.one_of(st.floats(max_value=0.0), st.floats(min_value=1e31), st.just(math.nan), st.just(math.inf)),
    "w": st.one_of(st.floats(max_value=0.0), st.floats(min_value=1e31), st.just(math.nan)),
    "R_c": st.one_of(st.floats(max_value=0.0), st.floats(min_value=1e31), st.just(math.nan)),
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
    # Accepted: then it must be a value the field really allows (a number where a number goes).
    assert key in ("eta", "r_max", "power_s") and isinstance(junk, (int, float)) and math.isfinite(junk)


@FUZZ
@given(beta=st.one_of(NOT_NUMBERS, BAD["beta"]))
def test_fit_api_refuses_bad_beta(beta):
    with pytest.raises(InputError):
        qfdjax.fit(beta, 0.015)
