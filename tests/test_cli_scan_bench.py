"""CLI scan with a TOML config, report, bench smoke run, and the sensitivity study (slow)."""

import json

import numpy as np
import pytest

from qfdjax.bench import bench_exact_energies, bench_reference_energies, bench_seed_method, device_info
from qfdjax.cli import main


def test_scan_config_toml_and_report(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(
        'description = "tiny"\nbeta = [3.0, 3.2, 3]\nw = [0.01, 0.03, 2]\nw_spacing = "linear"\n'
        '[fit]\nstarts = 3\nseed = 4\n[bounds.mu]\nR_c = [0.05, 0.35]\n'
    )
    out = tmp_path / "run"
    assert main(["scan", "--config", str(config), "--out", str(out), "--no-progress", "--chunk", "4"]) == 0
    text = capsys.readouterr().out
    assert "VERDICT: Path C" in text
    record = json.loads((out / "scan.json").read_text())
    assert record["config"]["w_spacing"] == "linear" and record["config"]["fit"]["starts"] == 3
    assert record["config"]["bounds"]["mu.R_c"] == [0.05, 0.35]
    assert np.allclose(record["w"], [0.01, 0.03])
    # Flags override the file; a changed config refuses to reuse the directory.
    assert main(["scan", "--config", str(config), "--starts", "4", "--out", str(out), "--no-progress"]) == 2
    assert "refusing to mix" in capsys.readouterr().err
    (out / "chi2_map.png").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "chi2_map.png").exists()
    assert "VERDICT" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["scan", "--beta", "3.2", "3.0", "4"], "START < STOP"),
        (["scan", "--w", "0.01", "0.02", "x"], "START STOP N"),
        (["scan", "--beta", "3.0", "3.2", "0"], "beta N"),
        (["scan", "--points", "5"], "START:STOP"),
        (["report", "/nonexistent/dir"], "is not a directory"),
        (["bench", "--device", "tpu"], "device"),
    ],
)
def test_cli_bad_input(argv, message, capsys, tmp_path):
    assert main(argv + (["--out", str(tmp_path / "o")] if argv[0] == "scan" else [])) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_bench_pieces_report_positive_rates():
    rows = bench_exact_energies([100, 1000], repeats=1)
    assert [r["batch"] for r in rows] == [100, 1000]
    assert all(r["energies_per_s"] > 0 and r["compile_s"] >= 0 for r in rows)
    ref = bench_reference_energies(100, repeats=1)
    assert ref["energies_per_s"] > 0 and ref["grid_points"] > 800
    seed = bench_seed_method(0.2)
    assert seed["energies_per_s"] > 0 and seed["seconds_per_grid_point_estimated"] > 0
    info = device_info()
    assert info["dtype"] == "float64" and info["platform"] in ("cpu", "gpu")


@pytest.mark.slow
def test_sensitivity_small(tmp_path):
    from qfdjax.sensitivity import run_sensitivity, sensitivity_summary

    result = run_sensitivity(starts=4, budgets=(30,), resolution_grid={"num_theta": (10, 20)},
                             progress=lambda m: None)
    assert result["optimizer_budget"]["exact"][0]["method"] == "gradient"
    assert result["optimizer_budget"]["exact"][1]["delta_chi2"] >= 0
    assert result["resolution"]["num_theta"][1]["beta_min_shift"] == 0.0
    assert "resolution" in sensitivity_summary(result)


def test_bench_quick_cli(tmp_path):
    # Runs the whole quick benchmark (~20 s on 2 cores); checks the JSON, never the timings.
    out = tmp_path / "b.json"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["energies_per_s"] > 0 and r["device"]["dtype"] == "float64" and "versions" in r
    assert r["device"]["jax"] and r["device"]["cpu_count"] >= 1 and r["device"]["device_kind"]
    assert [row["batch"] for row in r["exact_energies"]][-1] == 100_000
    for key in ("reference_energies", "fits", "scan_16x10", "seed_method", "ratios"):
        assert key in r
    assert r["ratios"]["exact_energies_vs_seed"] > 0
