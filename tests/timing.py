"""How much slower this machine runs now than idle: waits and deadlines in process tests scale by it.

Measured once per test process: the time a fresh interpreter takes to import JAX and equinox (what
every qfdjax process does before anything else) against the same on this project's 2-core machine
idle (2.0 s, measured 2026-12-07).  A loaded machine (other jobs, both xdist workers starting JAX
processes at once) then gets proportionally longer timeouts instead of spurious failures; an idle
one keeps the tight ones, so a real hang still fails fast.
"""

import functools
import math
import subprocess
import sys
import time

IDLE_IMPORT_SECONDS = 2.0


@functools.lru_cache(maxsize=1)
def slowdown() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import jax, equinox"], check=True, capture_output=True)
    return max(1.0, (time.perf_counter() - t0) / IDLE_IMPORT_SECONDS)


def scaled(seconds: float) -> float:
    """`seconds` on an idle machine, stretched by the present slowdown."""
    return seconds * slowdown()


def scaled_int(seconds: int) -> int:
    return int(math.ceil(scaled(seconds)))
