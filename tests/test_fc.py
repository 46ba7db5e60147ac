"""Feldman-Cousins (issue 21): the construction against the published Gaussian-with-boundary case, and on a scan."""

import json
import math

import numpy as np
import pytest

from qfdjax.cli import main
from qfdjax.stats.fc import critical_values, newton_steps, projected_interval
from qfdjax.stats.toys import standard_normals

MU = np.round(np.arange(0.0, 6.0001, 0.01), 10)


def _t(x, mu):
    """FC's ordering for a Gaussian mean mu >= 0 with unit sigma: chi2(mu) - chi2 at the best physical mu."""
    x, mu = np.broadcast_arrays(np.asarray(x, float), np.asarray(mu, float))
    return (x - mu) ** 2 - np.where(x < 0, x**2, 0.0)


def _exact_critical(mu, cl):
    """The exact critical value of t at mu (no toys): P(t <= c | mu) = cl solved by bisection."""
    phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731

    def prob(c):
        r = math.sqrt(c)
        lo = mu - r if r <= mu else (mu * mu - c) / (2 * mu) if mu > 0 else -math.inf
        return phi(r) - phi(lo - mu)

    a, b = 0.0, 100.0
    for _ in range(100):
        m = 0.5 * (a + b)
        a, b = (m, b) if prob(m) < cl else (a, m)
    return b


def _interval(x0, critical):
    accepted = _t(x0, MU) <= critical
    return projected_interval(MU, accepted)


@pytest.fixture(scope="module")
def toy_critical():
    n = 4000
    z = standard_normals(7, np.arange(MU.size * n), 1)[:, 0].reshape(MU.size, n)
    t = _t(MU[:, None] + z, MU[:, None])
    return critical_values(t, np.ones_like(t, bool), levels=(0.9,))["0.9"]


def test_exact_construction_reproduces_feldman_cousins_1998():
    """Feldman & Cousins (1998), Gaussian with a boundary at 90 % CL: x0 = 0 gives [0, 1.64], and the interval
    stops being an upper limit (its lower end leaves 0) at x0 = 1.28."""
    exact = np.array([_exact_critical(m, 0.9) for m in MU])
    assert _interval(0.0, exact)["upper"] == pytest.approx(1.64, abs=0.011)
    assert _interval(0.0, exact)["lower"] == 0.0
    assert _interval(1.25, exact)["lower"] == 0.0 and _interval(1.32, exact)["lower"] > 0.0
    # Far from the boundary FC is the central interval x0 -+ 1.645.
    far = _interval(4.0, exact)
    assert far["lower"] == pytest.approx(4.0 - 1.645, abs=0.011) and far["upper"] == pytest.approx(4.0 + 1.645, abs=0.011)


def test_toy_construction_matches_the_exact_one(toy_critical):
    exact = np.array([_exact_critical(m, 0.9) for m in MU])
    for x0 in (-1.0, 0.0, 0.8, 2.0, 3.5):
        toy, ref = _interval(x0, toy_critical), _interval(x0, exact)
        assert toy["lower"] == pytest.approx(ref["lower"], abs=0.05), x0
        assert toy["upper"] == pytest.approx(ref["upper"], abs=0.05), x0


def test_newton_steps_only_where_the_profile_is_convex():
    H = np.array([[[2.0, 0.0], [0.0, 4.0]], [[1.0, 2.0], [2.0, 1.0]]])
    g = np.array([[2.0, 4.0], [1.0, 1.0]])
    np.testing.assert_allclose(newton_steps(g, H), [[-1.0, -1.0], [0.0, 0.0]])


def test_fc_on_a_scan_is_resumable_and_reported(tmp_path, capsys):
    out = tmp_path / "scan"
    assert main(["scan", "--beta", "3.0", "3.2", "3", "--w", "0.01", "0.03", "2", "--starts", "3", "--no-progress",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--fc", "12", "--fc-chunk", "2"]) == 0
    text = capsys.readouterr().out
    assert "Feldman-Cousins (12 toys per grid point" in text
    record = json.loads((out / "scan.json").read_text())
    fc = record["fc"]
    assert np.shape(fc["t_observed"]) == (3, 2) and np.shape(fc["t_critical"]["0.6827"]) == (3, 2)
    accepted = np.array(fc["accepted"]["0.9545"])
    t_obs, crit = np.array(fc["t_observed"]), np.array(fc["t_critical"]["0.9545"])
    np.testing.assert_array_equal(accepted, t_obs <= crit)
    assert accepted[np.unravel_index(np.argmin(t_obs), t_obs.shape)]  # the best point is always accepted
    assert (out / "fc_map.png").stat().st_size > 10_000
    # Every point's first toy is checked against refits at every grid node (6 points: stride 1), and the text
    # says what each critical value rests on.
    assert fc["search_check"]["sampled_toys"] == 6 and 0 <= fc["search_check"]["missed"] <= 6
    assert np.array_equal(np.array(fc["all_toys"]), np.full((3, 2), 12))
    assert "local search checked against every grid node for 6 toys" in text
    assert "each critical value rests on the point's certified toys" in text
    chunks = {p.name: p.stat().st_mtime_ns for p in (out / "fc").iterdir()}
    assert chunks
    # Rerun: every point comes from its verified chunk, nothing is refitted; same numbers.
    assert main(["report", str(out), "--fc", "12", "--fc-chunk", "2"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "fc").iterdir()} == chunks
    assert json.loads((out / "scan.json").read_text())["fc"]["t_critical"] == fc["t_critical"]
    # A plain report keeps the saved regions, redraws their map (in the format asked for) and prints them.
    capsys.readouterr()
    assert main(["report", str(out), "--format", "pdf"]) == 0
    assert "Feldman-Cousins (12 toys per grid point" in capsys.readouterr().out
    assert (out / "fc_map.pdf").read_bytes().startswith(b"%PDF")
    # Split across hosts sharing the directory: parts write chunks only, the last report combines them.
    split = tmp_path / "split"
    assert main(["scan", "--beta", "3.0", "3.2", "3", "--w", "0.01", "0.03", "2", "--starts", "3", "--no-progress",
                 "--out", str(split)]) == 0
    capsys.readouterr()
    assert main(["report", str(split), "--fc", "12", "--fc-chunk", "2", "--fc-points", "0:4"]) == 0
    assert "once every part is done" in capsys.readouterr().out and "fc" not in json.loads(
        (split / "scan.json").read_text())
    assert main(["report", str(split), "--fc", "12", "--fc-chunk", "2", "--fc-points", "4:6"]) == 0
    assert main(["report", str(split), "--fc", "12", "--fc-chunk", "2"]) == 0
    combined = json.loads((split / "scan.json").read_text())["fc"]
    assert combined["t_critical"] == fc["t_critical"] and combined["accepted"] == fc["accepted"]
    # Bad requests: one line, exit 2.
    assert main(["report", str(out), "--fc", "12", "--fc-points", "4:99"]) == 2
    assert "fc points = 4:99 is out of range" in capsys.readouterr().err
    assert main(["report", str(out), "--fc", "12", "--fc-chunk", "2", "--fc-points", "1:4"]) == 2
    assert "multiples of the FC chunk" in capsys.readouterr().err
    assert main(["report", str(out), "--fc", "0"]) == 2
    assert "fc = 0.0 is out of range" in capsys.readouterr().err


def test_without_a_boundary_fc_is_the_wilks_region():
    """A Gaussian mean with no boundary (Wilks exact): t = (x - mu)^2 is chi2(1) at every mu, so the toys'
    critical values are 1.00 and 4.00 within their sampling error and FC accepts what Wilks accepts."""
    n = 20_000
    mu = np.linspace(-3, 3, 61)
    z = standard_normals(3, np.arange(mu.size * n), 1)[:, 0].reshape(mu.size, n)
    crit = critical_values(z**2, np.ones_like(z, bool), levels=(0.6827, 0.9545))
    assert np.all(np.abs(crit["0.6827"] - 1.0) < 0.05) and np.all(np.abs(crit["0.9545"] - 4.0) < 0.25)
    x0 = 0.37
    fc = projected_interval(mu, (x0 - mu) ** 2 <= crit["0.6827"])
    wilks = projected_interval(mu, (x0 - mu) ** 2 <= 1.0)
    assert fc["lower"] == pytest.approx(wilks["lower"], abs=0.11) and fc["upper"] == pytest.approx(wilks["upper"], abs=0.11)
