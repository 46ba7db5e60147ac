"""Scans by a team of processes on jax.distributed: real processes on this machine, talking through JAX's runtime."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from qfdjax.cli import main
from qfdjax.scans.team import TeamSettings, settings_from

from .timing import scaled, scaled_int

GRID = ["--beta", "3.0", "3.2", "3", "--w", "0.01", "0.03", "3", "--starts", "2", "--chunk", "2", "--no-progress"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int = 1) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _start(args, devices=1, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "qfdjax", "scan", *args], env=_env(devices), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _team(out, port, n=2, extra=(), devices=1, per_rank=None):
    procs = []
    for rank in range(n):
        args = [*GRID, "--out", str(out), "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(n),
                "--process-id", str(rank), *extra, *((per_rank or {}).get(rank, ()))]
        procs.append(_start(args, devices))
    return [(p.wait(timeout=scaled(240)), *p.communicate()) for p in procs]


@pytest.fixture(scope="module")
def solo_scan(tmp_path_factory):
    # Two devices, as each team process has: where two parameters are degenerate the point an
    # optimiser stops at along the flat direction depends on the device split (chi2 does not).
    out = tmp_path_factory.mktemp("solo") / "scan"
    proc = _start([*GRID, "--out", str(out)], devices=2)
    _, err = proc.communicate(timeout=scaled(240))
    assert proc.returncode == 0, err
    return json.loads((out / "scan.json").read_text()), dict(np.load(out / "scan.npz"))


def test_two_processes_give_the_one_process_numbers(tmp_path, solo_scan):
    solo, solo_arrays = solo_scan
    out = tmp_path / "team"
    results = _team(out, _free_port(), devices=2)
    for rank, (status, _stdout, stderr) in enumerate(results):
        assert status == 0, f"process {rank}: {stderr}"
    assert "process 1 of 2: fitted" in results[1][1]
    team = json.loads((out / "scan.json").read_text())
    assert team["processes"]["count"] == 2 and team["processes"]["devices"] == 4
    assert sum(p["fitted_points"] for p in team["processes"]["per_process"]) == 9
    assert all(p["fitted_points"] > 0 for p in team["processes"]["per_process"])
    chi2_team, chi2_solo = np.array(team["chi2"]), np.array(solo["chi2"])
    np.testing.assert_allclose(chi2_team, chi2_solo, rtol=1e-9, atol=0)
    arrays = dict(np.load(out / "scan.npz"))
    np.testing.assert_allclose(arrays["u"], solo_arrays["u"], rtol=1e-9, atol=1e-12)
    # Written once: one record, and every point in exactly one chunk file.
    assert sorted(p.name for p in out.glob("scan.*")) == ["scan.csv", "scan.json", "scan.npz"]
    ids = np.concatenate([np.load(f)["ids"] for f in (out / "chunks").glob("chunk_*.npz")])
    assert np.array_equal(np.sort(ids), np.arange(9))

    # Kill-all-and-rerun: a rerun (here with three processes) fits only what is missing.
    for f in sorted((out / "chunks").glob("chunk_*.npz"))[:2]:
        f.unlink()
    (out / "scan.json").unlink()
    results = _team(out, _free_port(), n=3)
    assert all(status == 0 for status, _, _ in results), [r[2] for r in results]
    again = json.loads((out / "scan.json").read_text())
    assert again["timings"]["resumed_points"] == 5
    assert sum(p["fitted_points"] for p in again["processes"]["per_process"]) == 4
    np.testing.assert_allclose(np.array(again["chi2"]), chi2_solo, rtol=1e-9, atol=0)
    np.testing.assert_allclose(np.array(again["S"]), np.array(solo["S"]), rtol=1e-9, atol=0)


def test_lonely_processes_give_up_in_one_line(tmp_path):
    # Process 0 and process 1 of two different teams (two ports), started together: each waits alone.
    t0 = time.perf_counter()
    wait = scaled_int(2)
    procs = [_start([*GRID, "--out", str(tmp_path / f"lonely{rank}"), "--coordinator", f"127.0.0.1:{_free_port()}",
                     "--num-processes", "2", "--process-id", str(rank), "--connect-timeout", str(wait)])
             for rank in (0, 1)]
    for rank, proc in enumerate(procs):
        _, stderr = proc.communicate(timeout=scaled(60))
        status = proc.returncode
        elapsed = time.perf_counter() - t0
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, stderr
        if rank == 0:
            # Process 0 opened the coordinator; nobody came.
            assert status == 1, stderr
            assert lines[0].startswith("qfdjax scan: error: process 0 of 2: not every process reached")
        else:
            # Process 1 never saw its run announced, so it never contacted the coordinator.
            assert status == 2, stderr
            assert lines[0].startswith("qfdjax scan: error: process 1 of 2: process 0 of this run did not announce")
        assert f"--connect-timeout {wait} s" in lines[0]
        assert elapsed < scaled(30)


def test_a_process_of_another_run_never_joins_a_running_team(tmp_path):
    """Two strangers aim at a running team's coordinator: one from a run in another directory, one from a
    run with another configuration in the same directory.  Neither connects (each says why in one line);
    the team finishes with the one-process numbers."""
    port = _free_port()
    out = tmp_path / "team"
    team = [_start([*GRID, "--out", str(out), "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                    "--process-id", str(rank)]) for rank in (0, 1)]
    deadline = time.time() + scaled(60)
    while not (out / ".team.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    strangers = [_start([*GRID, "--out", str(where), "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                         "--process-id", "1", "--connect-timeout", str(scaled_int(3)), *extra])
                 for where, extra in ((tmp_path / "elsewhere", []), (out, ["--seed", "7"]))]
    for proc in strangers:
        _, stderr = proc.communicate(timeout=scaled(120))
        assert proc.returncode == 2, stderr
        assert "did not announce itself" in stderr and stderr.count("\n") == 1, stderr
    assert "announces another run" in stderr  # the one in the team's own directory saw the team's token
    for rank, proc in enumerate(team):
        _, err = proc.communicate(timeout=scaled(240))
        assert proc.returncode == 0, f"process {rank}: {err}"
    record = json.loads((out / "scan.json").read_text())
    assert record["processes"]["count"] == 2 and np.isfinite(np.array(record["chi2"])).all()


def _lock_holders(path) -> set[int]:
    """The processes holding a lock on `path` (read from /proc/locks: taking the lock to find out could make
    the team's own claim fail)."""
    try:
        inode = os.stat(path).st_ino
    except FileNotFoundError:
        return set()
    with open("/proc/locks") as locks:
        rows = [line.split() for line in locks]
    return {int(row[4]) for row in rows if len(row) > 5 and row[5].endswith(f":{inode}")}


def test_the_same_command_started_twice_never_joins_the_running_team(tmp_path):
    """An identical process 1 (same command, directory and port: the same run token) started while
    the team runs refuses in one line without connecting; the team finishes.  A later rerun of the
    whole team (a resume) finds the old claim stale and runs."""
    port = _free_port()
    out = tmp_path / "team"
    args = [*GRID, "--out", str(out), "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    team = [_start([*args, "--process-id", str(rank)]) for rank in (0, 1)]
    deadline = time.time() + scaled(60)
    # Until both of the team's workers hold their claims (a claim file exists a moment before it is locked).
    while time.time() < deadline:
        holders = [_lock_holders(out / f".team.process-{rank}") for rank in (0, 1)]
        if all(holders):
            break
        assert all(proc.poll() is None for proc in team), "the team ended before the twin could start"
        time.sleep(0.05)
    # The team's workers are paused (each runs in its own session under its supervisor, with its plot workers)
    # while the twin starts: however loaded the machine, the team cannot finish, and give up its claim, before
    # the twin has looked at it.
    groups = {os.getpgid(pid) for pids in holders for pid in pids}
    for group in groups:
        os.killpg(group, signal.SIGSTOP)
    try:
        twin = _start([*args, "--process-id", "1", "--connect-timeout", str(scaled_int(5))])
        _, stderr = twin.communicate(timeout=scaled(120))
    finally:
        for group in groups:
            os.killpg(group, signal.SIGCONT)
    assert twin.returncode == 2 and stderr.count("\n") == 1, stderr
    assert "a process 1 of a team in" in stderr, stderr
    for rank, proc in enumerate(team):
        _, err = proc.communicate(timeout=scaled(240))
        assert proc.returncode == 0, f"process {rank}: {err}"
    again = _team(out, port)
    assert [status for status, *_ in again] == [0, 0], again


def test_a_process_that_dies_stops_the_team(tmp_path):
    port = _free_port()
    out = tmp_path / "dies"
    env = _env()
    env["QFDJAX_HEARTBEAT_TIMEOUT"] = str(scaled_int(3))
    grid = [*GRID[:-5], "--beta", "2.9", "3.3", "8", "--w", "0.005", "0.05", "8", "--chunk", "1", "--no-progress"]
    procs = [subprocess.Popen([sys.executable, "-m", "qfdjax", "scan", *grid, "--out", str(out),
                               "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(r)],
                              env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True) for r in (0, 1)]
    deadline = time.time() + scaled(120)
    while not list((out / "chunks").glob("chunk_*.npz")) and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(procs[1].pid, signal.SIGKILL)
    procs[1].communicate()
    t0 = time.perf_counter()
    status = procs[0].wait(timeout=scaled(90))
    _, stderr = procs[0].communicate()
    assert status == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "another process of the team stopped" in lines[0], stderr
    assert time.perf_counter() - t0 < scaled(60)
    assert (out / "logs" / "process-0.log").exists()


def test_processes_running_different_commands_are_refused(tmp_path):
    # Process 1 runs another command: it sees process 0's announcement of a different run and never connects
    # (it could as well be a stranger aiming at a running team); process 0 gives up after its connect timeout.
    results = _team(tmp_path / "mixed", _free_port(), extra=["--connect-timeout", str(scaled_int(3))],
                    per_rank={1: ["--seed", "5"]})
    (status0, _, err0), (status1, _, err1) = results
    assert status1 == 2 and "announces another run" in err1 and err1.count("\n") == 1, err1
    assert status0 == 1 and "not every process reached" in err0 and err0.count("\n") == 1, err0


@pytest.mark.parametrize("flags, message", [
    (["--num-processes", "2", "--process-id", "0"], "missing --coordinator"),
    (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"], "must be HOST:PORT"),
    (["--coordinator", "localhost:99999", "--num-processes", "2", "--process-id", "0"], "port in 1..65535"),
    (["--coordinator", "localhost:1234", "--num-processes", "2", "--process-id", "2"], "process-id = 2 is out of range"),
    (["--coordinator", "localhost:1234", "--num-processes", "0", "--process-id", "0"], "num-processes = 0"),
    (["--coordinator", "localhost:1234", "--num-processes", "2", "--process-id", "0", "--connect-timeout", "0"],
     "connect-timeout = 0"),
    (["--distributed"], "--distributed found no cluster to join"),
])
def test_bad_team_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    assert main(["scan", *GRID, "--out", str(tmp_path / "x"), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "x").exists()


def test_settings_come_from_the_environment_when_flags_are_absent():
    env = {"QFDJAX_COORDINATOR": "node7:4000", "QFDJAX_NUM_PROCESSES": "4", "QFDJAX_PROCESS_ID": "3"}
    s = settings_from(environ=env)
    assert (s.coordinator, s.num_processes, s.process_id, s.enabled) == ("node7:4000", 4, 3, True)
    assert settings_from(process_id=1, environ=env).process_id == 1
    assert not settings_from(environ={}).enabled
    assert TeamSettings().label() == "this process"


@pytest.mark.slow  # the explicit-flag team test above is its fast variant; this adds only Slurm's variables
def test_distributed_flag_joins_a_slurm_job(tmp_path, solo_scan):
    """--distributed under srun: JAX reads the SLURM_* variables (faked here for two local tasks)."""
    job = next(j for j in range(700_001, 800_000) if _port_free(j % 4096 + 61440))
    procs = []
    for rank in (0, 1):
        env = _env(2) | {"SLURM_JOB_ID": str(job), "SLURM_STEP_NODELIST": "localhost", "SLURM_NTASKS": "2",
                         "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank), "SLURM_STEP_NUM_NODES": "1"}
        procs.append(subprocess.Popen([sys.executable, "-m", "qfdjax", "scan", *GRID, "--out", str(tmp_path / "s"),
                                       "--distributed"], env=env, text=True, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE))
    for proc in procs:
        _, err = proc.communicate(timeout=scaled(240))
        assert proc.returncode == 0, err
    record = json.loads((tmp_path / "s" / "scan.json").read_text())
    assert record["processes"]["count"] == 2
    np.testing.assert_allclose(np.array(record["chi2"]), np.array(solo_scan[0]["chi2"]), rtol=1e-9, atol=0)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_feldman_cousins_as_a_team_equals_one_process(tmp_path):
    """report --fc on a team: each process fits its share of the grid points' toys (fixed groups, so
    the same batches as one process), process 0 combines; the regions equal one process's exactly."""
    import shutil

    src = tmp_path / "scan"
    assert main(["scan", *GRID, "--out", str(src)]) == 0
    solo, team_dir = tmp_path / "solo", tmp_path / "team"
    shutil.copytree(src, solo)
    shutil.copytree(src, team_dir)
    assert main(["report", str(solo), "--fc", "6", "--fc-chunk", "2"]) == 0
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "qfdjax", "report", str(team_dir), "--fc", "6", "--fc-chunk", "2",
                               "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(r)],
                              env=_env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for r in (0, 1)]
    results = [(*p.communicate(timeout=scaled(240)), p.returncode) for p in procs]
    for rank, (_, err, status) in enumerate(results):
        assert status == 0, f"process {rank}: {err}"
    assert "process 1 of 2: fitted the Feldman-Cousins toys of" in results[1][0]
    assert "Feldman-Cousins (6 toys per grid point" in results[0][0]
    one = json.loads((solo / "scan.json").read_text())["fc"]
    two = json.loads((team_dir / "scan.json").read_text())["fc"]
    for key in ("t_observed", "t_critical", "accepted", "intervals", "valid_toys"):
        assert two[key] == one[key], key
    assert two["processes"] == 2
    # Both processes wrote chunks into the shared directory.
    assert len(list((team_dir / "fc").glob("fc_*.npz"))) == len(list((solo / "fc").glob("fc_*.npz")))


def test_a_killed_worker_is_one_line_and_status_137(tmp_path, monkeypatch, capsys):
    # The OOM killer's SIGKILL leaves no runtime log: the parent used to pass -9 on as exit
    # status 247 with no word.  A stand-in interpreter that kills itself plays the worker.
    from qfdjax.cli import supervise
    from qfdjax.scans.team import TeamSettings

    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nkill -9 $$\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    settings = TeamSettings(coordinator="127.0.0.1:1", num_processes=2, process_id=1)
    status = supervise.run_child(["scan"], settings, str(tmp_path / "out"))
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 128 + signal.SIGKILL
    assert len(lines) == 1 and "process 1 of 2: its worker was killed by SIGKILL" in lines[0], lines
    assert not (tmp_path / "out").exists()  # nothing written: it had no runtime log to keep
