"""Where a 1-D Delta chi^2 profile crosses a level, walking out from its best point.

NumPy only: a scan's analysis uses it without loading JAX (`qfdjax report`), and
the refitted interval ends (scans/intervals.py) and parameter profiles
(fitting/param_profile.py) bracket their crossings with the same walk.
"""

from __future__ import annotations

import numpy as np

# Wilks' Delta chi^2 for two parameters at 68.27 % and 95.45 % CL (chi^2(2) quantiles, as Feldman-Cousins
# tables print them): the regions FC results are compared with.
WILKS_2D = {0.6827: 2.30, 0.9545: 6.18}


def level_brackets(delta, level: float, start: int | None = None) -> list[tuple[str, int, int]]:
    """[(side, a, b)]: neighbours with delta[a] < level <= delta[b], the first on each side of `start`.

    `start` is the index to walk out from (default: the profile's minimum);
    a side whose walk reaches the end of the axis without a crossing is left out.
    """
    delta = np.asarray(delta, float)
    k = int(np.nanargmin(delta)) if start is None else int(start)
    out = []
    for side, step in (("lower", -1), ("upper", 1)):
        a = k
        while 0 <= a + step < delta.size:
            b = a + step
            if delta[b] >= level > delta[a]:
                out.append((side, a, b))
                break
            a = b
    return out
