"""Result objects: FitResult and ScanResult, as attributes and as the JSON they are."""

import json

import numpy as np
import pytest

import qfdjax
import qfdjax.errors
from qfdjax import FitConfig, FitResult, ScanConfig, ScanResult, run_scan


def test_fit_result_attributes_and_json():
    r = qfdjax.fit(3.1, 0.015)
    assert isinstance(r, FitResult) and r.valid and r.chi2 == pytest.approx(16488857.82, rel=1e-9)
    assert r.values["tau.U"] == pytest.approx(0.15) and r.at_bounds["tau.U"] == "upper"
    # The electron block is flat: no errors, and the covariance is undefined (null), not zeros.
    assert r.errors == {} and r.covariance is None and r["covariance"] is None and r["hessian_singular"]
    assert json.loads(json.dumps(r.to_dict()))["chi2"] == r["chi2"]
    assert "FitResult(chi2=16488857.82" in repr(r)


def test_scan_result_shapes_and_load(tmp_path):
    config = ScanConfig(beta=(3.0, 3.2, 3), w=(0.01, 0.02, 2), fit=FitConfig(starts=3))
    s = run_scan(config, tmp_path, progress=False)
    assert isinstance(s, ScanResult)
    assert s.chi2.shape == (3, 2) and s.params.shape == (3, 2, 9) and s.converged.shape == (3, 2)
    loaded = ScanResult.load(tmp_path)
    np.testing.assert_array_equal(loaded.chi2, s.chi2)
    assert loaded.verdict["path"] == "C"
    with pytest.raises(qfdjax.errors.InputError, match="not a directory"):
        ScanResult.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(qfdjax.errors.InputError, match="no scan.json"):
        ScanResult.load(tmp_path / "empty")
    frame = s.to_pandas()  # pandas is in the test extra: an ImportError here is a failure
    assert len(frame) == 6 and frame["chi2"].min() == pytest.approx(s.chi2.min())
    fit_frame = qfdjax.fit(3.1, 0.015).to_pandas()
    assert len(fit_frame) == 9


def test_fit_result_in_iminuit_idiom(tmp_path):
    """values/errors/covariance/correlation by name, minos() at any CL, a readable repr and an HTML table;
    not a dict, so `values` is the parameters and nothing mistakes it for a mapping."""
    from qfdjax.fitting.bounds_file import read_bounds_file

    r = qfdjax.fit(3.1, 0.015, space=read_bounds_file("experiments/configs/identifiable_mu_tau_U.toml"))
    assert not isinstance(r, dict) and r.valid
    assert r.values["mu.U"] == pytest.approx(0.0368) and set(r.errors) == {"mu.U", "tau.U"}
    cov, corr = r.covariance, r.correlation
    assert cov["mu.U", "mu.U"] == pytest.approx(r.errors["mu.U"] ** 2, rel=1e-12)
    assert cov["mu.U", "tau.U"] == cov[4, 7] and corr["mu.U", "mu.U"] == pytest.approx(1.0)
    assert -1 < corr["mu.U", "tau.U"] < 1 and np.isnan(corr["e.A", "mu.U"])
    one = r.minos()
    assert set(one) == {"mu.U", "tau.U"}
    assert -one["mu.U"][0] == pytest.approx(r.errors["mu.U"], rel=1e-3) and one["mu.U"][1] > 0
    two = r.minos(["mu.U"], cl=0.9545)  # Delta chi2 = 4: twice as wide on this quadratic profile
    assert two["mu.U"][1] == pytest.approx(2 * one["mu.U"][1], rel=2e-3)
    assert json.loads(json.dumps(r.to_dict()))["minos"]["mu.U"] == list(two["mu.U"])
    assert "mu.U     0.0368 +- 2.57e-06" in repr(r) and "(fixed)" in repr(r)
    assert "<table>" in r._repr_html_() and "HESSE error" in r._repr_html_()
    assert qfdjax.fit(3.1, 0.015).correlation is None  # singular: undefined, not zeros


def test_cli_minos_without_names_takes_every_free_parameter(tmp_path, capsys):
    from qfdjax.cli import main

    out = tmp_path / "f.json"
    assert main(["fit", "--beta", "3.1", "--w", "0.015", "--bounds", "experiments/configs/identifiable_mu_tau_U.toml",
                 "--minos", "--cl", "0.9545", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert set(record["minos"]) == {"mu.U", "tau.U"} and record["minos_cl"] == 0.9545
    assert record["minos"]["mu.U"][1] == pytest.approx(2 * record["errors"]["mu.U"], rel=2e-3)
    capsys.readouterr()
    assert main(["fit", "--beta", "3.1", "--w", "0.015", "--minos", "mu.X"]) == 2
    assert "minos parameter 'mu.X' is unknown" in capsys.readouterr().err


def test_plots_never_switch_the_callers_matplotlib_backend(tmp_path):
    import subprocess
    import sys

    code = ("import matplotlib; matplotlib.use('svg'); import qfdjax.scans.plots, qfdjax.fitting.param_profile, "
            "qfdjax.stats.toy_output, qfdjax.stats.fc; "
            "from qfdjax.scans.plot_axes import bare_subplots; fig, ax = bare_subplots(1, 2, figsize=(4, 3)); "
            "from qfdjax.io import save_figure; save_figure(fig, sys.argv[1]); "
            "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()")
    subprocess.run([sys.executable, "-c", "import sys; " + code, str(tmp_path / "f.png")], check=True)
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_energies_print_numbers_and_bounds_read_publicly():
    e = qfdjax.lepton_energies(3.1, 0.015, 0.0021, np.array([0.5, 0.2]), 0.1, 0.9)
    text = repr(e)
    assert text.startswith("Energies(E_total=[") and "E_stab=" in text and "shape" not in text
    assert f"{float(e.total[0]):.6f}"[:6] in text
    space = qfdjax.read_bounds("experiments/configs/identifiable_mu_tau_U.toml")
    assert isinstance(space, qfdjax.ParameterSpace) and not space.fixed[space.names.index("mu.U")]


def test_scan_profile_draws_into_the_callers_axes(tmp_path):
    from matplotlib.figure import Figure

    config = ScanConfig(beta=(3.0, 3.2, 3), w=(0.01, 0.02, 2), fit=FitConfig(starts=3))
    s = run_scan(config, tmp_path, progress=False)
    fig = Figure()
    ax = fig.subplots()
    assert s.plot_profile("beta", ax=ax) is ax
    assert ax.get_xlabel() == "β" and ax.get_legend() is not None and len(ax.lines) >= 2
    with pytest.raises(qfdjax.errors.InputError, match="must be beta or w"):
        s.plot_profile("gamma", ax=ax)


def test_refined_profile_matches_minos_and_contour_matches_hesse():
    """The 1-D interval is MINOS's crossing (not the grid's), and on this nearly quadratic fit the
    refitted 2-D contour lies on HESSE's ellipse to 0.1 %; both drawn into the caller's Axes."""
    from matplotlib.figure import Figure

    r = qfdjax.fit(3.1, 0.015, space=qfdjax.read_bounds("experiments/configs/identifiable_mu_tau_U.toml"))
    one = r.profile("mu.U", points=9)
    lower, upper = r.minos(["mu.U"])["mu.U"]
    x0 = r.values["mu.U"]
    width = upper - lower
    assert one["interval_method"].startswith("refitted")
    assert abs(one["interval"][0] - (x0 + lower)) <= 1e-4 * width
    assert abs(one["interval"][1] - (x0 + upper)) <= 1e-4 * width
    ax = Figure().subplots()
    assert r.plot_profile(ax=ax) is ax and ax.get_xlabel() == "$U_{μ}$"

    pair = r.profile(("mu.U", "tau.U"), points=5)
    assert pair["contour_closed"] and pair["contour_open_rays"] == 0
    names = ["mu.U", "tau.U"]
    cov = np.array([[r.covariance[a, b] for b in names] for a in names])
    d = np.array(pair["contour"][0])[:-1] - np.array([r.values[n] for n in names])
    q = np.einsum("ki,ij,kj->k", d, np.linalg.inv(cov), d)
    assert len(d) >= 64
    np.testing.assert_allclose(np.sqrt(pair["level"] / q), 1.0, atol=1e-3)
    fig = Figure()
    ax = fig.subplots()
    ax.set_title("the caller's own title")
    r.plot_profile(ax=ax)
    labels = ax.get_legend_handles_labels()[1]
    assert any("Δχ² = 2.3" in label for label in labels) and "best fit" in labels
    # Given Axes, it draws only inside them: the caller's title stays, no colour bar joins their figure.
    assert ax.get_title() == "the caller's own title" and fig.axes == [ax]


def test_progress_bars_only_where_someone_watches(monkeypatch):
    """Importing ipykernel (as a notebook-executing test runner does) is not running in Jupyter: no bar
    is drawn into a log, and a refused command never starts one."""
    import io

    pytest.importorskip("ipykernel")
    from qfdjax.runtime import interactive_progress, progress_callback

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not interactive_progress()
    assert progress_callback(10, "pt") is None


def test_scan_result_draws_into_what_the_caller_gives(tmp_path):
    """ScanResult is a mapping over its record, not a dict; its plot_* methods draw into the caller's Axes or
    Figure only and return them, and it round-trips through load."""
    from matplotlib.figure import Figure

    s = run_scan(ScanConfig(beta=(3.0, 3.2, 3), w=(0.01, 0.03, 3), fit=FitConfig(starts=2)), tmp_path / "s",
                 progress=False)
    assert not isinstance(s, dict) and s["verdict"] == s.verdict and "analysis" in s
    assert s.to_dict()["chi2"] == s["chi2"] and dict(s) == s.to_dict()
    fig = Figure()
    ax = fig.subplots()
    assert s.plot_chi2_map(ax=ax) is ax and fig.axes == [ax] and ax.collections
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert s.plot_profiles(axes=axes) is axes and len(fig.axes) == 2
    fig = Figure()
    assert s.plot_parameter_maps(fig=fig) is fig and len(fig.axes) >= 10
    with pytest.raises(qfdjax.errors.InputError, match="Feldman-Cousins"):
        s.plot_fc(axes=Figure().subplots(1, 2))
    loaded = ScanResult.load(tmp_path / "s")
    np.testing.assert_array_equal(loaded.chi2, s.chi2)


def test_records_become_plain_json_with_non_finite_numbers_as_null():
    """io._to_jsonable: what every results file is written from.  Rows of plain values take a fast path
    (no call per value); NaN and infinities become null wherever they sit, in rows of floats alone or mixed
    with flags, counts and names, in NumPy arrays and nested rows; a row is copied, never shared."""
    import numpy as np

    from qfdjax.io import _to_jsonable

    flags = [True, False, 3, "x", None]
    record = {"floats": [1.0, float("nan"), -float("inf")], "mixed": [2.0, float("nan"), True, 7, "e.U", None],
              "flags": flags, "nested": [[1.0, float("inf")], [False, None]], "array": np.array([0.5, np.nan]),
              "scalar": np.float64("nan"), "tuple": (1.0, float("nan"))}
    out = _to_jsonable(record)
    assert out == {"floats": [1.0, None, None], "mixed": [2.0, None, True, 7, "e.U", None], "flags": flags,
                   "nested": [[1.0, None], [False, None]], "array": [0.5, None], "scalar": None, "tuple": [1.0, None]}
    assert out["flags"] is not flags
