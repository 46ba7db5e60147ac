"""qfdjax.load: every kind of saved result back as its object, verified; a reloaded fit refits itself."""

import json

import numpy as np
import pytest

import qfdjax
from qfdjax.cli import main
from qfdjax.errors import InputError

BOUNDS = "experiments/configs/identifiable_mu_tau_U.toml"


def test_a_reloaded_fit_refits_without_the_original_session(tmp_path):
    out = tmp_path / "fit.json"
    assert main(["fit", "--beta", "3.1", "--w", "0.015", "--bounds", BOUNDS, "--out", str(out)]) == 0
    loaded = qfdjax.load(out)
    fresh = qfdjax.fit(3.1, 0.015, space=qfdjax.read_bounds(BOUNDS))
    assert isinstance(loaded, qfdjax.FitResult) and loaded.chi2 == fresh.chi2
    assert loaded.values == fresh.values and loaded.errors == fresh.errors
    again, first = loaded.minos(["mu.U"])["mu.U"], fresh.minos(["mu.U"])["mu.U"]
    np.testing.assert_allclose(again, first, rtol=1e-9)
    assert loaded.profile("tau.U", points=5)["interval_method"].startswith("refitted")


def test_scans_toys_and_records_come_back_verified(tmp_path):
    scan = tmp_path / "scan"
    assert main(["scan", "--beta", "3.0", "3.2", "3", "--w", "0.01", "0.02", "2", "--starts", "2", "--out", str(scan),
                 "--no-progress"]) == 0
    s = qfdjax.load(scan)
    assert isinstance(s, qfdjax.ScanResult) and s.chi2.shape == (3, 2)
    toys = tmp_path / "toys"
    assert main(["toys", "--beta", "3.1", "--w", "0.015", "--n", "8", "--bounds", BOUNDS, "--out", str(toys)]) == 0
    t = qfdjax.load(toys)
    assert t["n"] == 8 and t.chi2.shape == (8,) and t.p_value is None  # no degrees of freedom here
    forecast = tmp_path / "f.json"
    assert main(["forecast", "--beta", "3.1", "--w", "0.015", "--out", str(forecast)]) == 0
    assert "sigma_beta" in qfdjax.load(forecast)
    # An edited file is refused, never loaded.
    record = json.loads(forecast.read_text())
    record["sigma_beta"] = 1e-9
    forecast.write_text(json.dumps(record))
    with pytest.raises(InputError, match="seal"):
        qfdjax.load(forecast)
    with pytest.raises(InputError, match="not a qfdjax results directory"):
        qfdjax.load(tmp_path)


def test_a_posterior_comes_back_with_its_draws(tmp_path):
    pytest.importorskip("blackjax")
    out = tmp_path / "post"
    assert main(["sample", "--beta", "3.1", "--w", "0.015", "--bounds", BOUNDS, "--chains", "4", "--draws", "30",
                 "--warmup", "30", "--out", str(out)]) == 0
    record = qfdjax.load(out)
    assert record["names"] == ["mu.U", "tau.U"] and record["draws"].shape == (4, 30, 2)
    from qfdjax.cli.verify import verify_results

    assert "posterior at" in verify_results(out)


def test_the_public_functions_take_the_command_line_keywords(tmp_path):
    s = qfdjax.scan(beta=(3.0, 3.2, 3), w=(0.01, 0.02, 2), starts=2, out=tmp_path / "s", progress=False)
    assert isinstance(s, qfdjax.ScanResult) and s.chi2.shape == (3, 2)
    np.testing.assert_array_equal(qfdjax.load(tmp_path / "s").chi2, s.chi2)
    with_fc = qfdjax.fc(tmp_path / "s", 4, chunk=2)
    assert "fc" in with_fc and (tmp_path / "s" / "fc_map.png").exists()
    assert "fc" in qfdjax.load(tmp_path / "s")
    t = qfdjax.toys(3.1, 0.015, n=6, space=qfdjax.read_bounds(BOUNDS), out=tmp_path / "t")
    assert t.arrays["chi2"].shape == (6,) and t["arrays"] is t.arrays
    back = qfdjax.load(tmp_path / "t")
    assert {k: back[k] for k in ("n", "n_valid", "chi2_observed", "p_value")} == {
        k: t[k] for k in ("n", "n_valid", "chi2_observed", "p_value")}
    np.testing.assert_array_equal(back.chi2, t.chi2)
