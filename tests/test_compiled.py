"""Compile once, reuse everywhere: exported kernels, shape buckets, host-side starts, chunking."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from qfdjax.fitting.compiled import bucket
from qfdjax.fitting.fit import FitConfig
from qfdjax.fitting.optimize.starts import latin_hypercube_points
from qfdjax.scans.config import ScanConfig
from qfdjax.scans.scan import run_scan

FIT_TWICE = """
import json, sys
import qfdjax
from qfdjax.fitting.params import ParameterSpace
space = ParameterSpace.seed().with_overrides({sys.argv[1]: [0.05, 0.5]})
r = qfdjax.fit(3.1, 0.015, space=space, config=qfdjax.FitConfig(starts=4))
print(json.dumps([r["chi2"], "scipy" in sys.modules]))
"""

# A kernel that does call LAPACK must still find it initialised when it is loaded
# from disk in a fresh process (qfdjax skips the initialisation only for kernels
# that name no LAPACK target).
LAPACK_KERNEL = """
import sys
import numpy as np
import qfdjax
import jax.numpy as jnp
from qfdjax.fitting.compiled import call_compiled
a = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
b = np.array([1.0, 2.0, 3.0])
x = call_compiled("lapack_solve_test", lambda a, b: {"x": jnp.linalg.solve(a, b)}, a, b)["x"]
print(float(np.max(np.abs(np.asarray(x) - np.linalg.solve(a, b)))))
"""


def _fit_in_fresh_process(cache, bound_name):
    """chi^2 of the fit, and whether the process imported SciPy."""
    env = dict(os.environ, QFDJAX_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", FIT_TWICE, bound_name], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip())


def test_exported_kernels_are_reused_across_processes_and_bounds(tmp_path):
    first, _ = _fit_in_fresh_process(tmp_path, "mu.R_c")
    artifacts = sorted((tmp_path / "export").iterdir())
    assert len(artifacts) >= 2  # the LM round and the diagnostics kernels
    again, imported_scipy = _fit_in_fresh_process(tmp_path, "mu.R_c")
    assert again == first
    # Loading the kernels initialises no LAPACK, so a warm fit never imports SciPy.
    assert not imported_scipy
    # Other bounds are other input values, not other kernels: nothing new is exported.
    _fit_in_fresh_process(tmp_path, "tau.R_c")
    assert sorted((tmp_path / "export").iterdir()) == artifacts


def test_damaged_artifact_is_rebuilt(tmp_path):
    first, _ = _fit_in_fresh_process(tmp_path, "mu.R_c")
    for path in (tmp_path / "export").iterdir():
        path.write_bytes(b"not an exported kernel")
    assert _fit_in_fresh_process(tmp_path, "mu.R_c")[0] == first


def test_buckets():
    assert [bucket(n, 8) for n in (1, 8, 9, 32, 33, 160, 512)] == [8, 8, 32, 32, 128, 512, 512]
    assert [bucket(n) for n in (1, 2, 4, 5, 64, 65)] == [1, 4, 4, 16, 64, 256]


def test_starts_depend_only_on_seed_and_point_id():
    all_points = latin_hypercube_points(3, np.arange(10), 8, 9)
    some = latin_hypercube_points(3, np.array([7, 2]), 8, 9)
    np.testing.assert_array_equal(some, all_points[[7, 2]])
    assert not np.array_equal(latin_hypercube_points(4, [7], 8, 9), all_points[[7]])
    # One start per stratum in every coordinate.
    strata = np.floor(all_points * 8).astype(int)
    assert all(sorted(strata[p, :, d]) == list(range(8)) for p in range(10) for d in range(9))
    assert np.all((all_points >= 0) & (all_points < 1))


def test_numbers_do_not_depend_on_chunking(tmp_path):
    config = ScanConfig(beta=(3.0, 3.2, 3), w=(0.01, 0.03, 3), fit=FitConfig(starts=4, seed=1))
    small = run_scan(config, tmp_path / "small", chunk=2, progress=False, analyse=False)
    large = run_scan(config, tmp_path / "large", chunk=64, progress=False, analyse=False)
    np.testing.assert_allclose(np.array(small["chi2"]), np.array(large["chi2"]), rtol=1e-9, atol=0)
    np.testing.assert_allclose(np.array(small["params"]), np.array(large["params"]), rtol=1e-7, atol=1e-9)


def test_scans_without_a_chunk_cut_about_16_power_of_two_chunks(tmp_path):
    from qfdjax.scans.solver import auto_chunk

    sizes = {n: auto_chunk(n) for n in (1, 160, 1024, 4096, 4097, 65536, 1024 * 1024)}
    assert sizes == {1: 64, 160: 64, 1024: 64, 4096: 256, 4097: 512, 65536: 1024, 1024 * 1024: 1024}
    # The chunk a scan ran with is in its checkpoint stamp: the one auto_chunk gives for its points.
    config = ScanConfig(beta=(3.0, 3.2, 3), w=(0.01, 0.03, 3), fit=FitConfig(starts=2, seed=1))
    run_scan(config, tmp_path / "auto", progress=False, analyse=False)
    stamp = json.loads((tmp_path / "auto" / "scan_config.json").read_text())
    assert stamp["chunk"] == 64
    # The command's help says the same rule.
    import argparse

    from qfdjax.cli.scan import add_scan
    from qfdjax.scans.solver import AUTO_CHUNK_PARTS, AUTO_CHUNK_SIZES

    commands = argparse.ArgumentParser().add_subparsers()
    add_scan(commands)
    help_text = " ".join(commands.choices["scan"].format_help().split())
    assert f"about a {AUTO_CHUNK_PARTS}th of the points" in help_text
    assert "a power of two from {} to {}".format(*AUTO_CHUNK_SIZES) in help_text


@pytest.mark.parametrize("starts", [1, 3, 8])
def test_any_start_count_fits(starts):
    import qfdjax

    r = qfdjax.fit(3.1, 0.015, config=FitConfig(starts=starts, seed=2))
    assert r["chi2"] == pytest.approx(16488857.82, rel=1e-8) or starts < 3
    assert len(r["convergence"]["chi2_starts"]) == starts


def test_kernel_calling_lapack_works_when_loaded_from_disk(tmp_path):
    env = dict(os.environ, QFDJAX_CACHE_DIR=str(tmp_path))
    for _ in range(2):  # traced and exported, then loaded from disk in a fresh process
        out = subprocess.run([sys.executable, "-c", LAPACK_KERNEL], env=env, check=True,
                             capture_output=True, text=True)
        assert float(out.stdout.strip()) < 1e-14
    assert any((tmp_path / "export").iterdir())


def test_kernel_keys_are_remembered_and_equal_to_the_spelled_out_key():
    """A kernel's cache key is remembered per structure, statics and shapes (a scan asks thousands of
    times); the remembered key is the spelled-out one, another shape or dtype gets another key, and a
    structure that cannot be hashed is spelled out every time instead of failing."""
    import jax

    from qfdjax.fitting import compiled

    treedef = jax.tree_util.tree_structure((1, {"a": 2}))
    compiled._KEYS.clear()
    first = compiled._key("probe", treedef, ["static"], [np.zeros(3), np.zeros((2, 2), bool)])
    assert len(compiled._KEYS) == 1
    assert compiled._key("probe", treedef, ["static"], [np.ones(3), np.ones((2, 2), bool)]) == first
    assert compiled._key("probe", treedef, ["static"], [np.zeros(4), np.zeros((2, 2), bool)]) != first
    assert compiled._key("probe", treedef, ["static"], [np.zeros(3, np.float32), np.zeros((2, 2), bool)]) != first
    compiled._KEYS.clear()
    assert compiled._key("probe", treedef, ["static"], [np.zeros(3), np.zeros((2, 2), bool)]) == first
    unhashable = ["a structure", "that cannot be hashed"]
    assert compiled._key("probe", unhashable, [], [np.zeros(3)]) == compiled._key("probe", unhashable, [],
                                                                                   [np.zeros(3)])


@pytest.mark.parametrize("smallest", [8, 16])
def test_lane_parts_use_the_ladder_and_waste_little(smallest):
    from qfdjax.fitting.lanes import SPLIT_LANES, ladder, lane_parts

    sizes = set(ladder(smallest, 1 << 20))
    for n in list(range(1, 300)) + [576, 1440, 2880, 4096, 4097, 5000, 14400, 65537]:
        parts = lane_parts(n, smallest)
        assert set(parts) <= sizes and parts == sorted(parts, reverse=True), (n, parts)
        assert sum(parts) >= n and sum(parts[:-1]) < n, (n, parts)  # every batch holds real lanes
        assert sum(parts) - n < max(SPLIT_LANES, parts[0] // 16), (n, parts)
        assert len(parts) <= 7, (n, parts)
    assert lane_parts(2880, 8) == [2048, 512, 512]  # an FC group of 40 toys a point: 6 % padding, not 184 %
    assert lane_parts(576, 16) == [256, 256, 256]  # a scan chunk of 72 points: no padding
    assert lane_parts(8192, 16) == [4096, 4096]  # the 256 x 256 scan's chunks
    assert lane_parts(3, 16) == [16] and lane_parts(9, 8) == [32]  # never several of the smallest size


def test_repack_floor_saves_an_eighth_of_the_batch():
    from qfdjax.fitting.lanes import lane_parts, repack_floor

    assert [repack_floor(size, 8) for size in (512, 2048, 8192)] == [384, 1792, 7168]
    for size, smallest in ((512, 8), (2048, 8), (256, 16), (1024, 16), (4096, 16)):
        floor = repack_floor(size, smallest)
        assert sum(lane_parts(floor, smallest)) <= size - size // 8
        assert all(sum(lane_parts(n, smallest)) > size - size // 8 for n in range(floor + 1, size + 1))


def test_a_round_whose_kernel_would_compile_runs_padded_in_one_that_is_ready():
    from qfdjax.fitting.lanes import runnable_parts

    every = lambda size: True  # noqa: E731
    assert runnable_parts(5000, 16, 8192, every) == ([4096, 1024], [])
    # Only the first round's kernel is compiled yet: two batches of it, and the missing size compiles meanwhile.
    assert runnable_parts(5000, 16, 8192, lambda size: size == 4096) == ([4096, 4096], [1024])
    # The ready size that pads least, not the largest.
    assert runnable_parts(300, 16, 8192, lambda size: size in (4096, 1024)) == ([1024], [256])
    # Nothing ready (a process's first round): the batches it needs, compiled now.
    assert runnable_parts(300, 16, 8192, lambda size: False) == ([256, 256], [])
    # A single fit's quick-compiled 8-lane kernel neither replaces nor is replaced (its last bits differ).
    assert runnable_parts(5, 8, 512, lambda size: size == 512, keep=8) == ([8], [])
    assert runnable_parts(20, 8, 512, lambda size: size != 32, keep=8) == ([128], [32])
    # A run's last few lanes wait for no compile while a 1024-lane kernel is ready (READY_LANES), though
    # that pads them more than READY_PADDING times; past both limits their own size is compiled.
    assert runnable_parts(10, 64, 128, lambda size: size == 1024) == ([1024], [64])
    assert runnable_parts(10, 64, 128, lambda size: size == 4096) == ([64], [])


def test_a_one_off_batch_runs_in_a_bigger_ready_kernel_rather_than_compile_one():
    from qfdjax.fitting.lanes import READY_PADDING, ready_size

    assert ready_size(64, lambda size: True) == 64
    assert ready_size(64, lambda size: size == 1024) == 1024
    assert ready_size(64, lambda size: size == 64 * READY_PADDING * 4) == 64  # too much padding: compiled
    assert ready_size(64, lambda size: False) == 64


def _seed_lanes(points: int, starts: int = 8):
    from qfdjax.fitting.likelihood import Likelihood
    from qfdjax.fitting.kernel import initial_starts
    from qfdjax.fitting.params import ParameterSpace
    from qfdjax.fitting.problem import Problem, make_numerics
    from qfdjax.model.constants import lambda_from_eta
    from qfdjax.model.profiles import BoundaryLayer

    space = ParameterSpace.seed()
    problem = Problem.build(space, Likelihood.masses_only(), BoundaryLayer())
    beta, w = np.linspace(2.95, 3.25, points), np.linspace(0.005, 0.05, points)
    u0, _ = initial_starts(space, starts, np.arange(points), 0)
    return problem, make_numerics("exact", w), beta, w, lambda_from_eta(beta), u0.reshape(points * starts, -1)


def test_a_resumed_lm_run_is_the_same_however_its_rounds_are_cut():
    """Each round hands its (r, J) to the next: linearising again at the cut gave other last bits (the
    linearisation before the loop is compiled apart from the one inside it), so a run's steps depended
    on the round length."""
    from qfdjax.fitting.kernel import run_lm_lanes
    from qfdjax.fitting.optimize import LMConfig

    problem, numerics, beta, w, lam, u0 = _seed_lanes(1)
    runs = [run_lm_lanes(problem, numerics, np.zeros(len(u0), int), beta, w, lam, u0, LMConfig(), round_steps=steps)
            for steps in (24, 7)]
    assert np.sum(runs[0]["step"] > 7) >= 4  # most runs were cut at least once in the second
    for key in ("u", "chi2", "step", "damping", "pgrad"):
        np.testing.assert_array_equal(runs[0][key], runs[1][key], err_msg=key)


def test_a_big_batch_runs_until_repacking_pays_and_stops_there():
    """A batch past REPACK_FLOOR_LANES stops at the first step where no more than its floor of lanes are running;
    its lanes are then exactly where a fixed round of that many steps leaves them."""
    import jax

    from qfdjax.fitting.kernel import _lm_round
    from qfdjax.fitting.optimize import LMConfig

    problem, numerics, beta, w, lam, u0 = _seed_lanes(32)
    lanes = len(u0)
    point = np.repeat(np.arange(32), 8)
    lm = LMConfig()
    kernel = jax.jit(lambda num, *a: _lm_round(num, *a, problem, lm))

    def run(until, floor):
        return kernel(numerics.select(point), beta[point], w[point], lam[point],
                      np.tile(problem.likelihood.data(), (lanes, 1)), u0, np.full(lanes, np.nan),
                      np.full(lanes, lm.initial_damping), np.zeros(lanes, np.int64), np.zeros(lanes, bool),
                      np.zeros(lanes, np.int64), np.full((lanes, 3), np.nan), np.full((lanes, 3, u0.shape[1]), np.nan),
                      np.full(lanes, until, np.int64), np.full(lanes, floor, np.int64), np.zeros(lanes))

    floored = run(lm.max_steps, lanes // 2)
    steps = int(np.max(floored["step"]))
    running = ~np.asarray(floored["done"])
    assert 0 < running.sum() <= lanes // 2
    fixed = run(steps, -1)
    for key in ("u", "chi2", "step", "done", "r", "J"):
        np.testing.assert_array_equal(floored[key], fixed[key], err_msg=key)
    one_less = run(steps - 1, -1)
    assert (~np.asarray(one_less["done"])).sum() > lanes // 2  # it did not stop a step late either


def test_only_chi2_is_the_full_fits_minimum_over_its_starts():
    from qfdjax.fitting.fit import fit_points
    from qfdjax.model.constants import lambda_from_eta

    B, W = np.array([3.0, 3.1, 3.2]), np.array([0.01, 0.02, 0.04])
    full = fit_points(B, W, lambda_from_eta(B, 0.03), config=FitConfig(starts=3, seed=4))
    light = fit_points(B, W, lambda_from_eta(B, 0.03), config=FitConfig(starts=3, seed=4), only_chi2=True)
    assert set(light) == {"chi2"}
    np.testing.assert_array_equal(light["chi2"], np.min(full["chi2_starts"], axis=1))
    # The full fit's polished minimum differs from the LM's by rounding only.
    np.testing.assert_allclose(light["chi2"], full["chi2"], rtol=1e-12)


def test_a_command_loads_the_kernels_it_remembers_and_gives_the_same_numbers(tmp_path):
    env = dict(os.environ, QFDJAX_CACHE_DIR=str(tmp_path / "cache"), QFDJAX_VERBOSE="1")
    runs = []
    for k in range(2):
        done = subprocess.run([sys.executable, "-m", "qfdjax", "fit", "--beta", "3.1", "--w", "0.015", "--out",
                               str(tmp_path / f"fit{k}.json")], env=env, capture_output=True, text=True, check=True)
        runs.append((done.stderr, json.loads((tmp_path / f"fit{k}.json").read_text())))
    remembered = json.loads((tmp_path / "cache" / "export" / "remembered-fit.json").read_text())
    assert {e["name"] for e in remembered} == {"lm_round", "diagnostics"}
    assert "(remembered)" not in runs[0][0] and runs[1][0].count("(remembered)") == len(remembered), runs[1][0]
    assert runs[0][1]["chi2"] == runs[1][1]["chi2"] and runs[0][1]["params"] == runs[1][1]["params"]


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", '[{"name": "lm_round", "key": "../../etc"}]', '{"a": 1}'])
def test_a_damaged_kernel_memory_is_ignored(tmp_path, monkeypatch, text):
    from qfdjax.fitting import kernel_memory

    monkeypatch.setenv("QFDJAX_CACHE_DIR", str(tmp_path))
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "remembered-fit.json").write_text(text)
    assert kernel_memory.prefetch_remembered("fit") == 0
    assert kernel_memory.prefetch_remembered("../fit") == 0  # never a path outside the cache


def _double(x):
    return {"y": 2.0 * x}


def test_a_kernel_still_queued_behind_background_loads_is_loaded_at_once(tmp_path, monkeypatch):
    """A prefetch that has not started (the prefetch threads are busy with other, perhaps guessed, loads) is
    cancelled and loaded by the caller: waiting for the queue could cost more than loading."""
    import threading

    from qfdjax.fitting import compiled

    monkeypatch.setenv("QFDJAX_CACHE_DIR", str(tmp_path))
    release = threading.Event()
    busy_keys = [f"probe-busy-key-{k}" for k in range(compiled.PREFETCH_THREADS)]
    started = [threading.Event() for _ in busy_keys]

    def busy(k):
        started[k].set()
        release.wait(60)
        return None, "busy"

    for k, key in enumerate(busy_keys):
        compiled.submit_prefetch(key, busy, k, guessed=True)
    try:
        assert all(event.wait(30) for event in started)
        x = np.arange(3.0)
        compiled.prefetch("probe_queued", _double, x)
        queued = compiled._PENDING[compiled._split("probe_queued", (x,))[0]]
        out = compiled.call_compiled("probe_queued", _double, x)
        np.testing.assert_array_equal(np.asarray(out["y"]), 2.0 * x)
        assert queued.cancelled() and not release.is_set()  # loaded here while the thread was still busy
    finally:
        release.set()
        for key in busy_keys:
            compiled._PENDING.pop(key, None)
            compiled._GUESSED.discard(key)


def _exact_pseudo_data():
    """Two seed points, their fitted parameters, those moved inside the box (off the seed's bounds, so that
    the masses they predict can be fitted exactly) and the masses they predict."""
    from qfdjax.fitting.fit import fit_points
    from qfdjax.fitting.params import ParameterSpace
    from qfdjax.model.constants import lambda_from_eta
    from qfdjax.stats.toys import prediction_at

    problem, space = _seed_lanes(1)[0], ParameterSpace.seed()
    B, W = np.array([3.1, 3.2]), np.array([0.015, 0.03])
    lam = lambda_from_eta(B, 0.03)
    fitted = fit_points(B, W, lam, config=FitConfig(starts=2, seed=1))["params"]
    lo, span = space.arrays()
    truth = np.clip(fitted, lo + 0.3 * span, lo + 0.7 * span)
    exact_data = prediction_at(truth, B, W, lam, "exact", space, problem.likelihood)
    return problem, space, B, W, lam, fitted, truth, exact_data


def test_an_exact_fit_stops_at_its_datas_rounding_floor_where_only_chi2_is_wanted():
    """Pseudo-data that the model reproduces exactly (its own prediction at a fit's parameters): every start
    that reaches the exact fit stops once below the data's rounding floor (1000 ulps of each datum per
    residual: sum (1000 eps d / sigma)^2, sigma = 1e-4 of the measured masses), no later than the run without the floor, and
    only_chi2's minimum is the full fit's within that floor."""
    from qfdjax.fitting.kernel import initial_starts, solve_points
    from qfdjax.fitting.fit import fit_points
    from qfdjax.fitting.optimize import DEConfig, LMConfig
    from qfdjax.fitting.problem import make_numerics
    from qfdjax.model.constants import MASSES_MEV

    problem, space, B, W, lam, _, _, data = _exact_pseudo_data()
    likelihood = problem.likelihood
    floor = likelihood.chi2_rounding_floor(data)
    masses = np.array(MASSES_MEV)  # the seed space: e, mu, tau
    np.testing.assert_allclose(floor, np.sum((1000 * np.finfo(float).eps * data / (1e-4 * masses)) ** 2, axis=1),
                               rtol=1e-12)
    starts, keys = initial_starts(space, 8, np.arange(2), 0)
    num = make_numerics("exact", W)
    runs = [solve_points(problem, num, B, W, lam, starts, keys, "gradient", LMConfig(), DEConfig(), data=data,
                         stop_at_rounding=stop) for stop in (False, True)]
    exact = runs[0]["chi2_starts"] < floor[:, None]
    assert exact.sum() >= 4, exact  # most starts find the exact fit
    assert np.all(runs[1]["chi2_starts"][exact] < floor[np.nonzero(exact)[0]])
    assert np.all(runs[1]["steps_starts"] <= runs[0]["steps_starts"])
    assert runs[1]["steps_starts"][exact].sum() < runs[0]["steps_starts"][exact].sum()
    light = fit_points(B, W, lam, data=data, config=FitConfig(starts=8), only_chi2=True)
    full = fit_points(B, W, lam, data=data, config=FitConfig(starts=8))
    assert np.all(light["chi2"] < floor) and np.all(full["chi2"] < floor)


def test_a_warm_start_that_ends_exact_spares_the_other_starts_and_the_least_chi2_is_the_same(monkeypatch):
    """least_chi2(warm_first=True): the other starts run only for points whose warm start ended above the
    rounding floor, and the least chi^2 is every start's, to within that floor (exact pseudo-data at one
    point, the seed's data at the other); fit_points(warm_first=True) likewise for a full fit."""
    from qfdjax.fitting import kernel, refits
    from qfdjax.fitting.kernel import initial_starts
    from qfdjax.fitting.fit import fit_points
    from qfdjax.fitting.optimize import DEConfig, LMConfig
    from qfdjax.fitting.problem import make_numerics

    problem, space, B, W, lam, fitted, truth, exact_data = _exact_pseudo_data()
    likelihood = problem.likelihood
    data = np.stack([exact_data[0], likelihood.data()])
    starts, keys = initial_starts(space, 8, np.arange(2), 0)
    warm = np.concatenate([space.to_unit(np.stack([truth[0], fitted[1]]))[:, None], starts], axis=1)
    num = make_numerics("exact", W)
    lanes = []
    solve = kernel.solve_points
    monkeypatch.setattr(refits, "solve_points",
                        lambda *a, **k: lanes.append(a[5].shape[0] * a[5].shape[1]) or solve(*a, **k))
    args = (problem, num, B, W, lam, warm, keys, "gradient", LMConfig(), DEConfig())
    every = refits.least_chi2(*args, data=data)
    assert lanes == [18]
    first = refits.least_chi2(*args, data=data, warm_first=True)
    assert lanes[1:] == [2, 8]  # both warm starts, then the seed data's point's other eight
    floor = likelihood.chi2_rounding_floor(data)
    assert every[0] < floor[0] and first[0] < floor[0]
    assert every[1] > 1e6
    np.testing.assert_allclose(first[1], every[1], rtol=1e-12)
    # A full fit the same way: the exact point ran its warm start alone and is certified; the other as without.
    kwargs = dict(data=data, extra_starts=np.stack([truth[0], fitted[1]]), config=FitConfig(starts=8))
    full, warm = fit_points(B, W, lam, **kwargs), fit_points(B, W, lam, warm_first=True, **kwargs)
    assert np.isfinite(warm["chi2_starts"][0]).sum() == 1 and np.isfinite(warm["chi2_starts"][1]).all()
    assert warm["converged"].all() and full["converged"].all()
    assert warm["chi2"][0] < floor[0] and full["chi2"][0] < floor[0]
    np.testing.assert_allclose(warm["chi2"][1], full["chi2"][1], rtol=1e-12)
    np.testing.assert_allclose(warm["params"], full["params"], rtol=1e-6)


@pytest.mark.parametrize("numerics_name", ["exact", "reference"])
def test_a_prefetch_from_one_lanes_shapes_has_the_key_of_the_batch_it_loads_for(numerics_name):
    """run_lm_lanes prefetches the half-size round's kernel from one lane's arguments widened to shapes
    (`lanes_shaped`): its key must be the one the gathered batch gets, or the prefetch loads a kernel
    nobody calls."""
    from qfdjax.fitting import compiled
    from qfdjax.fitting.kernel import _lm_round, _round_args
    from qfdjax.fitting.optimize import LMConfig
    from qfdjax.fitting.problem import make_numerics

    problem, _, beta, w, lam, u0 = _seed_lanes(4)
    numerics = make_numerics(numerics_name, w)
    lanes, residuals = len(u0), problem.likelihood.residual_count()
    state = {"u": u0, "chi2": np.full(lanes, np.nan), "damping": np.full(lanes, 1e-3),
             "step": np.zeros(lanes, np.int64), "done": np.zeros(lanes, bool), "stalls": np.zeros(lanes, np.int64),
             "r": np.zeros((lanes, residuals)), "J": np.zeros((lanes, residuals, u0.shape[1])),
             "chi2_floor": np.zeros(lanes)}
    point = np.repeat(np.arange(4), lanes // 4)
    data = np.tile(problem.likelihood.data(), (4, 1))
    shared = (problem, LMConfig())
    idx = np.arange(8)
    gathered = compiled._split("lm_round", (_lm_round, _round_args(state, idx, beta, w, lam, data, point, 24),
                                            numerics.select(point[idx]), shared))[0]
    one = idx[:1]
    shaped = compiled._split("lm_round", (_lm_round, compiled.lanes_shaped(
        _round_args(state, one, beta, w, lam, data, point, 24), 8), compiled.lanes_shaped(
        numerics.select(point[one]), 8, numerics.point_axes()), shared))[0]
    assert shaped == gathered
    wider = compiled.lanes_shaped(_round_args(state, one, beta, w, lam, data, point, 24), 16)
    assert compiled._split("lm_round", (_lm_round, wider, numerics.select(point[idx]), shared))[0] != gathered


def test_a_fit_without_the_polish_runs_the_diagnostics_once_and_agrees_to_the_lms_tolerance(monkeypatch):
    """fit_points(polish=False) (Feldman-Cousins' fits at a toy's point): one diagnostics pass, at the LM's own
    point; chi^2 within the LM's tolerance of the polished fit's, and the same certificate."""
    from qfdjax.fitting import diagnostics
    from qfdjax.fitting.fit import fit_points
    from qfdjax.model.constants import lambda_from_eta

    B, W = np.array([3.0, 3.2]), np.array([0.01, 0.04])
    passes = []
    original = diagnostics.point_diagnostics
    monkeypatch.setattr(diagnostics, "point_diagnostics", lambda *a, **k: passes.append(1) or original(*a, **k))
    polished = fit_points(B, W, lambda_from_eta(B, 0.03), config=FitConfig(starts=4, seed=2))
    assert len(passes) == 2
    once = fit_points(B, W, lambda_from_eta(B, 0.03), config=FitConfig(starts=4, seed=2), polish=False)
    assert len(passes) == 3
    np.testing.assert_allclose(once["chi2"], polished["chi2"], rtol=1e-12)
    np.testing.assert_array_equal(once["converged"], polished["converged"])


XLA_SETTINGS = """
import os, sys
import qfdjax
flags = os.environ.get("XLA_FLAGS", "")
if sys.argv[1] == "compile":
    import jax, jax.numpy as jnp
    # A small reduction: what XLA:CPU hands to YNNPACK unless told not to.
    text = jax.jit(lambda x: jnp.sum(x * x, 1)).lower(jnp.ones((512, 9))).compile().as_text()
    flags += " ynn:" + str("__ynn_fusion" in text)
print(flags)
"""


@pytest.mark.parametrize("user, opt_out, expect", [
    (None, False, "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_prefer_vector_width=512 "
                  "--xla_cpu_enable_concurrency_optimized_scheduler=false ynn:False"),
    ("--xla_cpu_prefer_vector_width=256", False, "--xla_cpu_prefer_vector_width=256 "
     "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_enable_concurrency_optimized_scheduler=false"),
    ("--xla_force_host_platform_device_count=2", True, "--xla_force_host_platform_device_count=2"),
])
def test_xla_cpu_flags_reach_xla_unless_the_user_set_them(user, opt_out, expect):
    from qfdjax.runtime import XLA_CPU_FLAGS, XLA_CPU_FLAGS_JAXLIB, _jaxlib_release

    if _jaxlib_release() not in XLA_CPU_FLAGS_JAXLIB and not opt_out:
        pytest.skip(f"jaxlib {_jaxlib_release()} is not known to have the flags: qfdjax leaves XLA_FLAGS alone")

    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "QFDJAX_XLA_CPU_FLAGS")}
    if user is not None:
        env["XLA_FLAGS"] = user
    if opt_out:
        env["QFDJAX_XLA_CPU_FLAGS"] = "0"
    mode = "compile" if user is None else "env"
    out = subprocess.run([sys.executable, "-c", XLA_SETTINGS, mode], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == expect
    assert len(XLA_CPU_FLAGS) == 3


def test_xla_cpu_flags_only_for_a_jaxlib_known_to_have_them():
    # XLA aborts the process on a flag it does not know: another jaxlib keeps XLA's defaults.
    from qfdjax.runtime import XLA_CPU_FLAGS, XLA_CPU_FLAGS_JAXLIB, xla_flags_with_ours

    known = sorted(XLA_CPU_FLAGS_JAXLIB)[0]
    assert xla_flags_with_ours("", known) == " ".join(XLA_CPU_FLAGS)
    assert xla_flags_with_ours("--xla_cpu_prefer_vector_width=256", known).split()[0] == \
        "--xla_cpu_prefer_vector_width=256"
    for other in ((0, 4), (0, 99), (1, 0), None):
        assert xla_flags_with_ours("--xla_force_host_platform_device_count=2", other) == \
            "--xla_force_host_platform_device_count=2"


def test_background_loads_overlap_but_compiles_run_one_at_a_time(monkeypatch):
    import threading
    import time

    from qfdjax.fitting import compiled

    active = {"compile": 0, "any": 0}
    most = {"compile": 0, "any": 0}
    lock = threading.Lock()

    def fake_load(name, key, *rest):
        kind = "compile" if key in compiled._COMPILING else "load"
        with lock:
            active["any"] += 1
            active["compile"] += kind == "compile"
            most["any"], most["compile"] = max(most["any"], active["any"]), max(most["compile"], active["compile"])
        time.sleep(0.15)
        with lock:
            active["any"] -= 1
            active["compile"] -= kind == "compile"
        return None, kind

    monkeypatch.setattr(compiled, "_load_or_export", fake_load)
    keys = [f"probe-compile-{k}" for k in range(3)] + [f"probe-load-{k}" for k in range(3)]
    monkeypatch.setattr(compiled, "_COMPILING", set(keys[:3]))
    try:
        for key in keys:
            compiled.submit_prefetch(key, compiled._ready, "probe", key, None, [], [], None, [])
        for key in keys:
            compiled._PENDING[key].result()
    finally:
        for key in keys:
            compiled._PENDING.pop(key, None)
    assert most["compile"] == 1
    assert most["any"] == compiled.PREFETCH_THREADS == 2
