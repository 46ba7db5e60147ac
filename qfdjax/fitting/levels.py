"""Where a 1-D Delta chi^2 profile crosses a level, walking out from its best point.

NumPy only: a scan's analysis uses it without loading JAX (`qfdjax report`), and
the refitted interval ends (scans/intervals.py) and parameter profiles
(fitting/param_profile.py) bracket their crossings with the same walk.
"""

from __future__ import annotations

import numpy as np


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
