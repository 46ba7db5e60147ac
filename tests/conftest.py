import json
import os
from pathlib import Path

import jax
import numpy as np
import pytest

import qfdjax  # noqa: F401  (enables float64 before any test touches JAX)

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def reference_cases():
    with open(DATA / "seed_reference_cases.json") as handle:
        return json.load(handle)


@pytest.fixture(scope="session")
def energy_cases(reference_cases):
    return reference_cases["energies"]


def column(cases, key):
    return np.array([c[key] for c in cases], dtype=np.float64)


def pytest_collection_modifyitems(config, items):
    has_gpu = any(d.platform == "gpu" for d in jax.devices())
    skip_gpu = pytest.mark.skip(reason="no GPU visible")
    run_slow = os.environ.get("QFDJAX_RUN_SLOW") == "1" or "slow" in (config.getoption("-m") or "")
    skip_slow = pytest.mark.skip(reason="slow test: run with -m slow or QFDJAX_RUN_SLOW=1")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
