"""The README's Python recipes run verbatim."""

import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _section_code(title: str) -> list[str]:
    section = README.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_extending_the_model_recipes_run():
    import qfdjax

    blocks = _section_code("Extending the model")
    assert len(blocks) == 2
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)
        assert namespace["result"]["convergence"]["converged"]
        assert namespace["result"]["profile"] == "Parabolic"  # fitted before it was registered by name
        prior = namespace["with_prior"]
        assert prior["observables"] == ["mass", "e_core"] and "chi2_e_core" in prior
        assert prior["identifiability"]["n_data"] == 4
        # The registered profile is used, not silently replaced by the boundary layer.
        from qfdjax.model.profiles import make_profile
        assert type(make_profile("parabolic")).__name__ == "Parabolic"
    finally:
        qfdjax.PROFILES.pop("parabolic", None)
        qfdjax.OBSERVABLES.pop("e_core", None)


def test_scan_csv_round_trips(tmp_path):
    import csv

    import numpy as np

    from qfdjax import FitConfig, ScanConfig, run_scan

    record = run_scan(ScanConfig(beta=(3.0, 3.2, 2), w=(0.01, 0.02, 2), fit=FitConfig(starts=3)), tmp_path,
                      progress=False)
    with (tmp_path / "scan.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and list(rows[0])[:6] == ["point", "beta", "w", "chi2", "S", "converged"]
    chi2 = np.array([float(r["chi2"]) for r in rows]).reshape(2, 2)
    np.testing.assert_array_equal(chi2, np.array(record["chi2"]))
    params = np.array([[float(r[n]) for n in record["param_names"]] for r in rows]).reshape(2, 2, 9)
    np.testing.assert_array_equal(params, np.array(record["params"]))
    assert pytest.approx(float(rows[3]["beta"])) == 3.2


def _run_example(block: str, output_starts: str, out, monkeypatch, capsys) -> str:
    """A README command run verbatim but for --out (its committed result stays), from the project root;
    returns what it printed.  `output_starts`: where the block's shown output begins."""
    import shlex

    from qfdjax.cli import main

    command = block.split(output_starts)[0].replace("\\\n", " ").removeprefix("$ ")
    argv = shlex.split(command)[1:]
    argv[argv.index("--out") + 1] = str(out)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert main(argv) == 0
    return capsys.readouterr().out


def test_readme_fit_example_runs_and_prints_what_the_readme_shows(tmp_path, monkeypatch, capsys):
    """The errors/contour example, verbatim but for --out (its committed result must not be overwritten)."""
    block = next(b for b in re.findall(r"```\n(\$ qfdjax fit .*?)```", README, flags=re.S) if "--param-profile" in b)
    printed = _run_example(block, "\n...", tmp_path / "fit.json", monkeypatch, capsys)
    for line in block.splitlines():
        if line.strip().startswith(("HESSE", "MINOS")):
            assert line.strip() in printed, line


def test_readme_toys_example_runs_and_prints_what_the_readme_shows(tmp_path, monkeypatch, capsys):
    """The toys example of "Statistics past Wilks", verbatim but for --out (the committed result stays)."""
    block = next(b for b in re.findall(r"```\n(\$ qfdjax toys .*?)```", README, flags=re.S))
    printed = _run_example(block, "\ntoys at", tmp_path / "toys", monkeypatch, capsys)
    # The chi^2 lines too: an exact fit's chi^2 is printed as "0 to rounding", not as digits no run reproduces.
    shown = [line.strip() for line in block.splitlines()
             if line.strip().startswith(("coverage of", "goodness", "observed chi2_min", "toys' chi2_min"))]
    assert len(shown) == 5
    for line in shown:
        assert line in printed, line


def test_every_extending_recipe_runs_alone_in_a_fresh_process():
    """Each README Python block runs by itself in a new interpreter (issue 30: the ElectronCore block
    lacked `import qfdjax` and only passed when run after the one before it)."""
    import subprocess
    import sys

    for block in _section_code("Extending the model"):
        subprocess.run([sys.executable, "-c", block], check=True, capture_output=True, text=True, timeout=300)
