"""Memory estimates, checked before any work: a request this machine cannot hold is one line, not an OOM.

The figures are measured on the CPU kernels (an LM lane holds ~6 kB of XLA
temporaries; a seed-numerics lane its whole radial table of 12 float64 columns)
and err on the large side.  Host memory is what the kernels' inputs and results
take.  Every entry point that fits (fit, scan, relax, sensitivity) calls
`check_fit_memory` with its own shape.
"""

from __future__ import annotations

import os

from ..errors import InputError

# XLA temporaries per LM lane (measured: 48 kB per point at 8 starts), and per DE population member.
LANE_BYTES = 6_000
# Past this many points, lanes or members an index no longer fits the kernels' int32 counters.
MAX_LANES = 2**31 - 1


def machine_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def fit_memory_bytes(points: int, starts: int, n_params: int, *, chunk: int | None = None,
                     numerics: str = "exact", r_max: float = 10.0, method: str = "gradient",
                     de_popsize: int = 15) -> int:
    """Bytes a batch of `points` fits takes: host arrays for all points, device work for one chunk."""
    chunk = points if chunk is None else min(chunk, points)
    host = points * (starts * (n_params + 4) + (n_params + 1) ** 2 + 64) * 8
    lanes = chunk * starts
    if method != "gradient":
        # SciPy's convention: a population of popsize x (free parameters) members per point.
        lanes += chunk * de_popsize * n_params
    device = lanes * LANE_BYTES
    if numerics == "reference":
        # The seed's grid: r_max / dr_coarse coarse points plus refinement windows of ~w/25 spacing.
        grid = r_max / 0.02 + 3 * 5 * 25 + 50
        device += int(lanes * grid * 8 * 12)
    return int(host + device)


def check_fit_memory(what: str, points: int, starts: int, n_params: int, **shape) -> int:
    """Refuse, before any allocation, fits that cannot fit in this machine's memory; returns the estimate."""
    lanes = points * max(starts, 1)
    total = fit_memory_bytes(points, starts, n_params, **shape)
    if lanes > MAX_LANES:
        raise InputError(f"{what} asks for {points} points x {starts} starts = {lanes:.3g} fits (about "
                         f"{total / 2**30:.3g} GiB): must be at most {MAX_LANES:,} fits")
    available = machine_memory_bytes()
    if available and total > 0.8 * available:
        popsize = shape.get("de_popsize", 15)
        de = f", DE population {popsize} x {n_params}" if shape.get("method", "gradient") != "gradient" else ""
        raise InputError(f"{what} needs about {total / 2**30:.1f} GiB ({points} points x {starts} starts{de}, "
                         f"{shape.get('numerics', 'exact')} numerics) but this machine has "
                         f"{available / 2**30:.1f} GiB: use fewer points, starts, a smaller population or --chunk")
    return total
