"""Scans: agreement with single fits, resume, multi-device, bad grids."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qfdjax.errors import InputError
from qfdjax.fitting.fit import FitConfig, fit
from qfdjax.scans.config import ScanConfig
from qfdjax.scans.merge import merge_scans
from qfdjax.scans.scan import run_scan

SMALL = dict(beta=(3.0, 3.2, 3), w=(0.01, 0.03, 2), fit=FitConfig(starts=4, seed=2))


@pytest.fixture(scope="module")
def small_scan(tmp_path_factory):
    out = tmp_path_factory.mktemp("scan")
    return run_scan(ScanConfig(**SMALL), out, chunk=4, progress=False), out


def test_scan_matches_independent_fits(small_scan):
    record, out = small_scan
    chi2 = np.array(record["chi2"])
    assert chi2.shape == (3, 2)
    for i, j in ((0, 0), (2, 1)):
        single = fit(record["beta"][i], record["w"][j], config=FitConfig(starts=8, seed=5))
        assert chi2[i, j] == pytest.approx(single["chi2"], abs=0.1)
    assert all(all(row) for row in record["convergence"]["converged"])
    for name in ("scan.json", "scan.npz", "chi2_map.png", "profiles.png", "parameter_maps.png"):
        assert (out / name).exists()
    saved = json.loads((out / "scan.json").read_text())
    assert saved["verdict"]["path"] == "C"
    assert saved["config"]["beta"] == [3.0, 3.2, 3] and "versions" in saved and "device" in saved
    assert np.array(saved["params"]).shape == (3, 2, 9)


def test_resume_after_interrupt_is_identical(small_scan, tmp_path, monkeypatch):
    record, _ = small_scan
    import qfdjax.scans.solver as scan_module

    calls = {"n": 0}
    original = scan_module.ChunkSolver.solve

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(scan_module.ChunkSolver, "solve", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_scan(ScanConfig(**SMALL), tmp_path, chunk=4, progress=False)
    assert sorted(p.name for p in (tmp_path / "chunks").iterdir()) == ["chunk_000000000_000000004.npz"]
    monkeypatch.setattr(scan_module.ChunkSolver, "solve", original)
    resumed = run_scan(ScanConfig(**SMALL), tmp_path, chunk=4, progress=False)
    assert resumed["timings"]["resumed_points"] == 4
    assert resumed["chi2"] == record["chi2"]
    assert resumed["params"] == record["params"]
    # A different configuration must not be mixed into these chunks.
    other = ScanConfig(**{**SMALL, "eta": 0.05})
    with pytest.raises(InputError, match="refusing to mix"):
        run_scan(other, tmp_path, chunk=4, progress=False)


def test_split_and_merge_equals_whole(small_scan, tmp_path):
    record, _ = small_scan
    config = ScanConfig(**{**SMALL, "neighbour_passes": 0})
    whole = run_scan(config, tmp_path / "whole", chunk=4, progress=False)
    run_scan(config, tmp_path / "a", chunk=4, progress=False, point_range=(0, 4))
    run_scan(config, tmp_path / "b", chunk=4, progress=False, point_range=(4, 6))
    merged = merge_scans([tmp_path / "a", tmp_path / "b"], tmp_path / "merged")
    assert merged["chi2"] == whole["chi2"]
    with pytest.raises(InputError, match="distinct of 6"):
        merge_scans([tmp_path / "a"], tmp_path / "bad")


def test_multi_device_equals_single_device(small_scan, tmp_path):
    record, _ = small_scan
    script = (
        "import json, sys, jax; from qfdjax import run_scan, ScanConfig, FitConfig;"
        "assert len(jax.devices()) == 4;"
        "r = run_scan(ScanConfig(beta=(3.0, 3.2, 3), w=(0.01, 0.03, 2), fit=FitConfig(starts=4, seed=2)),"
        " sys.argv[1], chunk=4, progress=False);"
        "print(json.dumps(r['chi2']))"
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sharded = np.array(json.loads(proc.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(sharded, np.array(record["chi2"]), rtol=1e-12)
    assert json.loads((tmp_path / "scan.json").read_text())["device"]["count"] == 4


@pytest.mark.parametrize(
    "change, message",
    [
        ({"beta": (3.0, 3.2, 0)}, "beta N"),
        ({"beta": (3.3, 3.2, 4)}, "START < STOP"),
        ({"w": (0.0, 0.02, 3)}, "w START"),
        ({"w": (-0.01, 0.02, 3)}, "w START"),
        ({"w_spacing": "cubic"}, "spacing"),
        ({"numerics": "fast"}, "numerics"),
        ({"r_max": 0.5}, "r_max"),
    ],
)
def test_bad_grids_rejected_before_work(change, message, tmp_path):
    with pytest.raises(InputError, match=message):
        run_scan(ScanConfig(**{**SMALL, **change}), tmp_path / "never", progress=False)
    assert not (tmp_path / "never").exists()


def test_cli_scan_sigterm_then_resume(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "qfdjax", "scan", "--beta", "3.0", "3.2", "6", "--w", "0.01", "0.03", "4",
           "--starts", "3", "--chunk", "2", "--no-progress", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / "chunks").exists() and list((out / "chunks").glob("chunk_*.npz")):
            break
        time.sleep(0.02)
    # Stopped, signalled, continued: the SIGTERM is delivered the moment it runs again, after its first
    # chunk and before its last, however fast this machine fits the rest.
    proc.send_signal(signal.SIGSTOP)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    stdout, stderr = proc.communicate(timeout=120)
    saved = sorted((out / "chunks").glob("chunk_*.npz"))
    assert proc.returncode == 130, stderr[-2000:]
    assert "resume" in stderr
    assert 1 <= len(saved) < 12
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((out / "scan.json").read_text())
    assert record["timings"]["resumed_points"] == 2 * len(saved)
    assert np.array(record["chi2"]).shape == (6, 4)


def test_run_scan_from_an_unguarded_script_and_from_stdin(tmp_path):
    # Plot workers are spawned processes; they must not re-run the user's main script
    # (no `if __name__ == "__main__"` guard here), and a script read from stdin has
    # no file for them to import.
    script = (
        "import sys, qfdjax\n"
        "print('scan starts', flush=True)\n"
        "rec = qfdjax.run_scan(qfdjax.ScanConfig(beta=(3.0, 3.1, 2), w=(0.01, 0.02, 2)), sys.argv[1], progress=False)\n"
        "print(sorted(rec['plots']))\n"
    )
    path = tmp_path / "user_script.py"
    path.write_text(script)
    for cmd, stdin in (([sys.executable, str(path), str(tmp_path / "a")], None),
                       ([sys.executable, "-", str(tmp_path / "b")], script)):
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.count("scan starts") == 1 and "could not draw" not in proc.stderr
        out = Path(cmd[-1])
        assert all((out / f).exists() for f in ("chi2_map.png", "profiles.png", "parameter_maps.png",
                                                 "identifiability.png"))


def test_chunk_writer_finishes_every_write_and_raises_a_failed_one():
    """Chunk k is written while chunk k+1 fits: leaving the block (an interrupt too) waits for the write in
    flight, and a write that failed is raised in the caller, not lost in the thread."""
    import threading

    from qfdjax.scans.checkpoint import ChunkWriter

    class Directory:
        def __init__(self, fail_at=None):
            self.written, self.fail_at, self.threads = [], fail_at, set()

        def write_chunk(self, ids, arrays):
            time.sleep(0.05)
            self.threads.add(threading.current_thread().name)
            if int(ids[0]) == self.fail_at:
                raise OSError("disk full")
            self.written.append(int(ids[0]))

    directory = Directory()
    with pytest.raises(KeyboardInterrupt):
        with ChunkWriter(directory.write_chunk) as writer:
            for k in range(3):
                writer.write(np.array([k]), {"chi2": np.zeros(1)})
            raise KeyboardInterrupt
    assert directory.written == [0, 1, 2] and all(t.startswith("qfdjax-chunk-writer") for t in directory.threads)
    failing = Directory(fail_at=1)
    with pytest.raises(OSError, match="disk full"):
        with ChunkWriter(failing.write_chunk) as writer:
            for k in range(3):
                writer.write(np.array([k]), {"chi2": np.zeros(1)})
    assert failing.written == [0]
