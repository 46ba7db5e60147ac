"""Bad input: one line naming the value, exit status 2, no traceback, nothing written (issue 12)."""

import json

import pytest

from qfdjax.cli import main

FIT = ["fit", "--beta", "3.1", "--w", "0.015"]
ENERGY = ["energy", "--beta", "3.1", "--w", "0.015", "--R-c", "0.5", "--U", "0.1", "--A", "0.9"]


def _files(tmp_path):
    def make(name, text=None, data=None):
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        else:
            path.write_text(text)
        return str(path)
    return make


CASES = [
    # (argv builder, expected fragment)
    (lambda f, t: FIT + ["--out", str(t / "blocker" / "x.json")], "is a file"),
    (lambda f, t: FIT + ["--out", str(t)], "is a directory"),
    (lambda f, t: ["energy", "--cases", str(t)], "is a directory"),
    (lambda f, t: ["energy", "--cases", f("bin.json", data=b"\xff\xfe\x00\x81")], "not a text file"),
    (lambda f, t: ["energy", "--cases", f("c.json", json.dumps([{"beta": "3.1", "w": 0.01, "R_c": 0.5, "U": 0.1,
                                                                 "A": 0.9}]))], "beta = '3.1'"),
    (lambda f, t: ["energy", "--cases", f("c.json", json.dumps([{"beta": None, "w": 0.01, "R_c": 0.5, "U": 0.1,
                                                                 "A": 0.9}]))], "beta = None"),
    (lambda f, t: ["energy", "--cases", f("c.json", json.dumps([{"beta": 3.1, "w": 0.01, "R_c": 0.5, "U": 0.1,
                                                                 "A": 0.9, "guesses": 5}]))], "guesses = 5"),
    (lambda f, t: FIT + ["--bounds", f("b.toml", '[bounds.mu]\nR_c = ["a", 0.3]\n')], "must be a number"),
    (lambda f, t: FIT + ["--bounds", f("b.toml", "[bounds.mu]\nR_c = 0.2\n")], "must be [lower, upper]"),
    (lambda f, t: FIT + ["--bounds", f("b.toml", "fixed = 3\n")], "fixed = 3"),
    (lambda f, t: FIT + ["--bounds", f("b.toml", "[bound.mu]\nR_c = [0.1, 0.2]\n")], "unknown tables"),
    (lambda f, t: FIT + ["--bounds", f("b.toml", '[bounds.mu]\nRc = [0.1, 0.2]\n')], "bounds.mu.Rc is unknown"),
    (lambda f, t: FIT + ["--bounds", f("b.toml", '[fixed]\n"tau.A" = 0.5\n')], "fixed.tau.A = 0.5 is out of range"),
    (lambda f, t: FIT + ["--bounds", str(t)], "is a directory"),
    (lambda f, t: ["scan", "--config", f("s.toml", "beta = [3.0, 3.2]\n"), "--out", str(t / "o")], "[START, STOP, N]"),
    (lambda f, t: ["scan", "--config", f("s.toml", "beta = 3.0\n"), "--out", str(t / "o")], "[START, STOP, N]"),
    (lambda f, t: ["scan", "--config", f("s.toml", "[fit]\nstart = 3\n"), "--out", str(t / "o")],
     "[fit] has unknown keys"),
    (lambda f, t: ["scan", "--config", f("s.toml", 'eta = "0.03"\n'), "--out", str(t / "o")], "must be a number"),
    (lambda f, t: ["scan", "--config", f("s.toml", "beta = [3.0, 3.2, 2.5]\n"), "--out", str(t / "o")],
     "must be an integer"),
    (lambda f, t: ["scan", "--config", f("s.toml", "betta = [3.0, 3.2, 3]\n"), "--out", str(t / "o")],
     "unknown keys"),
    (lambda f, t: ["scan", "--config", str(t), "--out", str(t / "o")], "is a directory"),
    (lambda f, t: ["scan", "--beta", "3.0", "3.2", "1", "--out", str(t / "o")], "START == STOP with N = 1"),
    (lambda f, t: ["scan", "--beta", "-3.2", "-3.0", "3", "--out", str(t / "o")], "beta START = -3.2"),
    (lambda f, t: ["scan", "--starts", "1000000000", "--out", str(t / "o")], "GiB"),
    (lambda f, t: ["scan", "--seed", "99999999999999999999999", "--out", str(t / "o")], "seed"),
    (lambda f, t: ENERGY + ["--r-min", "2"], "r_min = 2.0 (case 0) is out of range: must be < R_c = 0.5"),
    (lambda f, t: ENERGY + ["--lam", "0.01", "--eta", "0.03"], "both lam and eta"),
    (lambda f, t: ["merge", str(t / "nope"), "--out", str(t / "m")], "is not a directory"),
    (lambda f, t: ["scan", "--beta", "-inf", "3.2", "3", "--out", str(t / "o")], "beta START = -inf"),
    (lambda f, t: ["fit", "--beta", "3.1", "--w", "-1e-3"], "w = -0.001"),
    (lambda f, t: ENERGY + ["--numerics", "reference", "--r-max", "1e9"], "seed grid of 5e+10 points"),
    # Issue 20: the model's domain, the same at every entry point.
    (lambda f, t: ["fit", "--beta", "0", "--w", "0.015"], "beta = 0.0 is out of range: must be >= 1e-30"),
    (lambda f, t: ["fit", "--beta", "-5", "--w", "0.015", "--lam", "0.01"], "beta = -5.0 is out of range"),
    (lambda f, t: ["relax", "--beta", "0", "--w", "0.015"], "beta = 0.0 is out of range"),
    (lambda f, t: ["energy", "--beta", "-3", "--lam", "0.01", "--w", "0.015", "--R-c", "0.5", "--U", "0.1",
                   "--A", "0.9"], "beta = -3.0 (case 0) is out of range"),
    (lambda f, t: ["energy", "--beta", "3.1", "--w", "0.015", "--R-c", "0.5", "--U", "1e308", "--A", "0.9"],
     "U = 1e+308 (case 0) is out of range: must be >= 0 and <= 1e+30"),
    (lambda f, t: FIT + ["--profile", "power", "--power-s", "1e308"], "power_s = 1e+308 is out of range"),
    (lambda f, t: FIT + ["--observables", "mass,g,g"], "names one twice"),
    (lambda f, t: FIT + ["--leptons", "mu,tau", "--bounds", f("b.toml", "[bounds.e]\nA = [0.9, 0.8]\n")],
     "bounds of e.A = [0.9, 0.8] are inverted"),
    (lambda f, t: FIT + ["--starts", "10000000000"], "GiB"),
    (lambda f, t: FIT + ["--method", "de", "--numerics", "reference", "--r-max", "1e9"], "radial points"),
    (lambda f, t: ["sensitivity", "--starts", "10000000000", "--out", str(t / "s")], "GiB"),
    (lambda f, t: ["scan", "--config", f("s.toml", "[fit]\nmethod = 'de'\nde_popsize = 10000000\n"), "--out",
                   str(t / "o")], "DE population 10000000 x 9"),
    (lambda f, t: ["scan", "--beta", "2.95", "3.25", "1000000000000", "--out", str(t / "o")], "GiB"),
    (lambda f, t: ["energy", "--cases", f("c.json", json.dumps([{"beta": 3.1, "w": 0.01, "R_c": 0.5, "U": 0.1,
                                                                 "A": 0.9, "num_theta": 10**7}])),
                   "--numerics", "reference"], "num_theta = 10000000.0 (case 0) is out of range"),
    (lambda f, t: ["energy", "--cases", f("c.json", json.dumps([{"beta": 3.1, "w": 0.01, "R_c": 0.5, "U": 0.1,
                                                                 "A": 0.9, "dr_fine_factor": 1e9}])),
                   "--numerics", "reference"], "radial points"),
    (lambda f, t: ["energy", "--cases", f("c.json", json.dumps([{"beta": 3.1, "w": 0.01, "R_c": 0.5, "U": 0.1,
                                                                 "A": 0.9, "min_fine_points": 10**9}])),
                   "--numerics", "reference"], "radial points"),
    (lambda f, t: ["energy", "--cases", f("c.json", json.dumps([{"beta": 3.1, "w": 0.01, "R_c": 0.5, "U": 0.1,
                                                                 "A": 0.9}])), "--beta", "3.2"],
     "--cases cannot be combined with --beta"),
    (lambda f, t: ["energy", "--cases", "/dev/zero"], "not a regular file"),
    (lambda f, t: ["energy", "--cases", f("deep.json", "[" * 200_000 + "]" * 200_000)], "nested too deeply"),
    (lambda f, t: FIT + ["--out", str(t / ("x" * 300) / "f.json")], "too long a path"),
    (lambda f, t: ["scan", "--out", "/proc/qfdjax-scan"], "cannot be written"),
]


def _fifo(tmp_path):
    import os

    path = tmp_path / "fifo"
    os.mkfifo(path)
    return str(path)


# A FIFO as an input blocks a reader forever: refused from its type, before it is opened.
CASES += [
    (lambda f, t: ["energy", "--cases", _fifo(t)], "not a regular file"),
    (lambda f, t: FIT + ["--bounds", _fifo(t)], "not a regular file"),
    (lambda f, t: FIT + ["--out", _fifo(t)], "not a regular file"),
]


@pytest.mark.parametrize("make_argv, fragment", CASES)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, make_argv, fragment):
    (tmp_path / "blocker").write_text("a regular file")
    argv = make_argv(_files(tmp_path), tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert fragment in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_quiet_and_verbose(tmp_path, capsys):
    out = tmp_path / "f.json"
    assert main(["fit", "--beta", "3.1", "--w", "0.015", "--starts", "4", "--quiet", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and out.exists()
    assert main(["fit", "--beta", "3.1", "--w", "0.015", "--starts", "4", "--verbose"]) == 0
    captured = capsys.readouterr()
    assert "chi2 =" in captured.out


def test_every_flag_has_help():
    import argparse

    from qfdjax.cli import build_parser

    missing = []
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += [f"{name} {a.option_strings or a.dest}" for a in sub._actions
                            if not a.help and not isinstance(a, argparse._HelpAction)]
    assert not missing, missing


def test_the_command_raises_the_gc_threshold_and_the_library_does_not(monkeypatch):
    import gc

    import qfdjax.cli as cli

    before = gc.get_threshold()
    seen = []
    monkeypatch.setattr(cli, "main", lambda: seen.append(gc.get_threshold()) or 0)
    monkeypatch.setattr(cli, "leave", lambda status: seen.append(status))
    try:
        assert before != cli.COMMAND_GC_THRESHOLD  # importing qfdjax left the process's own setting
        cli.run()
        assert seen == [cli.COMMAND_GC_THRESHOLD, 0]
    finally:
        gc.set_threshold(*before)
