"""Scan integrity: every damaged, foreign or raced checkpoint ends in the clean run's numbers or a clear refusal.

Each test is one defect found by a hostile tester (issue 12); the numbers are
compared with an undisturbed scan of the same configuration.
"""

import json
import shutil

import numpy as np
import pytest

from qfdjax.errors import InputError
from qfdjax.fitting.fit import FitConfig
from qfdjax.scans.checkpoint import ScanDirectory
from qfdjax.scans.config import ScanConfig
from qfdjax.scans.merge import merge_scans
from qfdjax.scans.scan import check_scan_size, run_scan

CONFIG = ScanConfig(beta=(3.0, 3.2, 3), w=(0.01, 0.03, 3), fit=FitConfig(starts=3, seed=4))


def _scan(out, chunk=4, config=CONFIG, **kw):
    return run_scan(config, out, chunk=chunk, progress=False, analyse=False, **kw)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    return _scan(out), out


def _same(record, reference):
    np.testing.assert_allclose(np.array(record["chi2"]), np.array(reference["chi2"]), rtol=1e-9, atol=0)


def _chunk_files(out):
    return sorted((out / "chunks").glob("chunk_*.npz"))


def test_resume_with_another_chunk_size(clean, tmp_path):
    reference, _ = clean
    _scan(tmp_path, chunk=4)
    for extra in _chunk_files(tmp_path)[1:]:
        extra.unlink()  # as if killed after the first chunk
    resumed = _scan(tmp_path, chunk=2)
    assert resumed["timings"]["resumed_points"] == 4
    _same(resumed, reference)


@pytest.mark.parametrize("damage", ["truncate", "empty", "flip", "other_chunk", "garbage"])
def test_damaged_chunk_is_refitted(clean, tmp_path, damage, capfd):
    reference, clean_dir = clean
    shutil.copytree(clean_dir / "chunks", tmp_path / "chunks")
    files = _chunk_files(tmp_path)
    target = files[1]
    data = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        target.write_bytes(b"")
    elif damage == "flip":
        flipped = bytearray(data)
        flipped[len(flipped) // 2] ^= 0xFF
        target.write_bytes(bytes(flipped))
    elif damage == "other_chunk":
        shutil.copy(files[0], target)  # a chunk overwritten by another chunk's file
    else:
        target.write_bytes(b"\x00" * 1000)
    record = _scan(tmp_path)
    _same(record, reference)
    if damage != "other_chunk":
        assert "ignoring" in capfd.readouterr().err


def test_tampered_values_fail_the_checksum(clean, tmp_path, capfd):
    reference, clean_dir = clean
    shutil.copytree(clean_dir / "chunks", tmp_path / "chunks")
    target = _chunk_files(tmp_path)[0]
    with np.load(target) as data:
        arrays = dict(data)
    arrays["chi2_starts"] = np.full_like(arrays["chi2_starts"], np.nan)
    np.savez(target, **arrays)
    record = _scan(tmp_path)
    _same(record, reference)
    assert "checksum" in capfd.readouterr().err


def test_duplicated_ids_and_missing_keys_are_refused(clean, tmp_path, capfd):
    reference, clean_dir = clean
    shutil.copytree(clean_dir / "chunks", tmp_path / "chunks")
    files = _chunk_files(tmp_path)
    with np.load(files[0]) as data:
        arrays = dict(data)
    arrays.pop("pgrad_starts")
    np.savez(files[0], **arrays)
    record = _scan(tmp_path)
    _same(record, reference)
    assert "missing pgrad_starts" in capfd.readouterr().err
    directory = ScanDirectory(tmp_path / "dup", CONFIG.fingerprint(), {})
    ids = np.array([0, 0])
    fake = {k: np.zeros((2, 3)) for k in ("chi2_starts", "pgrad_starts", "steps_starts", "done_starts")}
    fake.update(u_starts=np.zeros((2, 3, 9)), de_chi2=np.zeros(2), de_generations=np.zeros(2),
                de_converged=np.zeros(2))
    directory.write_chunk(ids, fake)
    ids_read, arrays_read = directory.read_chunks(np.arange(9), warn=lambda m: None)
    assert ids_read.size == 0 and arrays_read == {}


def test_stray_files_and_tmp_leftovers(clean, tmp_path):
    reference, clean_dir = clean
    shutil.copytree(clean_dir / "chunks", tmp_path / "chunks")
    first = _chunk_files(tmp_path)[0]
    shutil.copy(first, tmp_path / "chunks" / "chunk_000001 (copy).npz")
    (tmp_path / "chunks" / ".chunk_x.npz.abc.tmp").write_bytes(b"half a write")
    record = _scan(tmp_path)
    _same(record, reference)
    assert not list((tmp_path / "chunks").glob(".*.tmp"))


def test_other_grid_never_reuses_chunks_even_without_stamp(clean, tmp_path):
    reference, clean_dir = clean
    other = ScanConfig(beta=(3.0, 3.2, 3), w=(0.01, 0.03, 3), fit=FitConfig(starts=3, seed=5))
    _scan(tmp_path, config=other)
    (tmp_path / "scan_config.json").unlink()
    (tmp_path / "scan.json").unlink()
    _same(_scan(tmp_path), reference)


def test_truncated_stamp_and_crashed_run_do_not_block(clean, tmp_path):
    reference, _ = clean
    tmp_path.joinpath("scan_config.json").write_text('{"fingerprint": "abc", "con')
    _same(_scan(tmp_path), reference)
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    crashed.joinpath("scan_config.json").write_text(json.dumps({"fingerprint": "0123", "config": {}}))
    _same(_scan(crashed), reference)  # a stamp without results holds nothing to mix


def test_different_config_with_results_is_refused(clean, tmp_path):
    _, clean_dir = clean
    shutil.copytree(clean_dir, tmp_path / "c")
    other = ScanConfig(beta=(3.0, 3.2, 3), w=(0.01, 0.03, 3), fit=FitConfig(starts=3, seed=5))
    with pytest.raises(InputError, match=r"fit.seed: 4 -> 5.*refusing to mix"):
        _scan(tmp_path / "c", config=other)


def test_second_writer_is_refused(tmp_path):
    with ScanDirectory(tmp_path, CONFIG.fingerprint(), {"fingerprint": CONFIG.fingerprint()}):
        with pytest.raises(InputError, match="in use by another qfdjax process"):
            _scan(tmp_path)
    # The lock is released with its holder; the next run takes the directory.
    assert _scan(tmp_path)["chi2"]


def test_split_and_merge_equals_one_host_with_refit(tmp_path):
    config = ScanConfig(beta=(3.0, 3.2, 3), w=(0.01, 0.03, 2), fit=FitConfig(starts=1, seed=3))
    whole = run_scan(config, tmp_path / "whole", chunk=4, progress=False, analyse=False)
    run_scan(config, tmp_path / "a", chunk=4, progress=False, point_range=(0, 3))
    run_scan(config, tmp_path / "b", chunk=4, progress=False, point_range=(3, 6))
    merged = merge_scans([tmp_path / "a", tmp_path / "b"], tmp_path / "merged", analyse=False)
    np.testing.assert_allclose(np.array(merged["chi2"]), np.array(whole["chi2"]), rtol=1e-9, atol=0)
    assert merged["convergence"]["neighbour_refit"]["passes"] == whole["convergence"]["neighbour_refit"]["passes"]


@pytest.mark.parametrize("out_of", ["file", "proc"])
def test_unwritable_out_is_refused_before_work(tmp_path, out_of):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = blocker / "scan" if out_of == "file" else "/proc/qfdjax-scan"
    with pytest.raises(InputError, match="out = "):
        _scan(out)


def test_impossible_sizes_are_refused_with_the_estimate():
    with pytest.raises(InputError, match=r"GiB"):
        check_scan_size(CONFIG, 10**8, 64)
    with pytest.raises(InputError, match=r"GiB"):
        check_scan_size(ScanConfig(fit=FitConfig(starts=10**8)), 4, 64)
    with pytest.raises(InputError, match=r"DE population 10000000 x 9"):
        check_scan_size(ScanConfig(fit=FitConfig(method="de", de_popsize=10**7)), 160, 64)
    with pytest.raises(InputError, match=r"must be at most 2,147,483,647 fits"):
        check_scan_size(CONFIG, 10**12, 64)
    assert check_scan_size(ScanConfig(), 160, 64) < 2**30
