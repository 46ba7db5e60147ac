"""GPU readiness without a GPU (issue 22): every kernel the commands run lowers for CUDA, with no CPU-only call."""

import json

import jax
import jax.numpy as jnp
import numpy as np

from qfdjax.cli import main
from qfdjax.fitting.lowering import lower_kernel


def test_every_kernel_lowers_for_cuda(tmp_path, capsys):
    out = tmp_path / "lower.json"
    assert main(["bench", "--lower", "cuda", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    names = {k["name"] for k in result["kernels"]}
    assert {"lm_round", "diagnostics", "de", "chi2", "energies_exact", "energies_reference"} <= names
    for k in result["kernels"]:
        assert k["lowered"] and k["platforms"] == ["cuda"], k
        assert not k["cpu_only_calls"] and not k["host_callbacks"], k
        assert k["flops"] > 0 and k["projected_s"]["H200"] > 0, k
    assert result["ok"] and "projection" in result["projection_note"]
    assert "every kernel lowered" in capsys.readouterr().out


def _with_host_callback(x):
    return jax.pure_callback(lambda v: np.asarray(v) * 2, jax.ShapeDtypeStruct(x.shape, x.dtype), x)


def _with_lapack(x):
    return jnp.linalg.eigh(x)[0]


def test_the_check_flags_what_would_not_run_on_a_gpu():
    """The same check on constructs it must catch: a host callback (jax.export refuses to serialise one on any
    platform: reported as not lowered) and LAPACK (a CPU-only custom call)."""
    on_cpu = lower_kernel("probe", _with_host_callback, (np.eye(4),), platform="cpu")
    assert not on_cpu["lowered"] and "host_callback" in on_cpu["error"], on_cpu
    for_cuda = lower_kernel("probe", _with_host_callback, (np.eye(4),), platform="cuda")
    assert not for_cuda["lowered"] and for_cuda["error"], for_cuda
    lapack = lower_kernel("probe", _with_lapack, (np.eye(4),), platform="cpu")
    assert any(c.startswith("lapack_") for c in lapack["cpu_only_calls"]), lapack
