"""How an LM round's running lanes are cut into batches, and which batch sizes (kernels) a process uses.

Each distinct batch size is one kernel: about 3 s of XLA compile on two cores the first time a machine
needs it, ~0.14 s to load from the cache afterwards.  So the sizes form a short ladder, `smallest`
times powers of LANE_BASE, and a round that needs a size whose kernel would have to be compiled runs
padded in a size the process already has while that kernel compiles on a prefetch thread
(`runnable_parts`).  Neither choice changes a number: a lane's steps are the same in any batch
(tests/test_guarantees.py), so only device time and compiles are at stake.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from .compiled import bucket

# Powers of four, several batches of a size where one would waste more: a 256 x 256 scan's LM rounds
# load 4 sizes instead of 10 (4096 ... 64 lanes, with kernel.MIN_MANY_LANES; base 2: 8192 ... 16), its
# warm device time unchanged within the machine's noise (30.1/33.7 s against 34.0 s, same numbers
# bitwise), and a cold run compiles 6 kernels fewer (~3.7 s each).
LANE_BASE = 4
# At or above this many lanes a round's lanes are split into full batches of the size below their
# bucket; the rest, or what is left under a sixteenth of the first batch, is padded (in batches of the
# size below where that pads less than one batch of its bucket would).  Below it a small batch's fixed
# cost per LM step (~65 us on 2 cores) outweighs padding.
SPLIT_LANES = 1024
# A one-off batch (a refit's handful of points) whose kernel would have to be compiled runs padded in an
# already compiled kernel up to this many times its size: a scan's diagnostics of 1024 points run in
# ~90 ms, where compiling the kernel for 64 took 5.7 s (2 cores).
READY_PADDING = 64
# An LM round, though, runs padded in any ready kernel up to this many lanes rather than wait for a
# compile: 1024 lanes cost ~1 ms an LM step on 2 cores, a compile 2-5 s.  A cold 64 x 64 scan's interval
# refits (about ten lanes in their last rounds) waited 3.6 s for the 64-lane kernel beside a ready
# 1024-lane one.
READY_LANES = 1024


def lane_parts(n: int, smallest: int) -> list[int]:
    """Split n lanes into batches of ladder sizes (`smallest` times powers of LANE_BASE), largest first.

    Why: padding a round's lanes to the next ladder size would run up to four times the lanes needed (a
    Feldman-Cousins group's 2880 lanes as 8192); 2048 + 512 + 512 wastes 6 %.  Returns the batch
    sizes; their sum is >= n and exceeds it by less than max(SPLIT_LANES, first batch / 16).
    """
    parts: list[int] = []
    left = n
    while left > 0:
        size = bucket(left, smallest, LANE_BASE)
        below = size // LANE_BASE
        if size > left and below > smallest:
            if left >= SPLIT_LANES and (not parts or 16 * left > parts[0]):
                full = left // below
            else:
                full = -(-left // below)
                if full * below >= size:
                    full = 0
            if full:
                parts += [below] * full
                left -= below * full
                continue
        parts.append(size)
        left -= size
    return parts


@functools.lru_cache(maxsize=None)
def repack_floor(size: int, smallest: int) -> int:
    """The most running lanes at which a batch of `size` is re-packed: the largest count whose
    `lane_parts` take at most seven eighths of it."""
    budget = size - size // 8
    return max((n for n in range(size) if sum(lane_parts(n, smallest)) <= budget), default=0)


def ladder(smallest: int, largest: int) -> list[int]:
    """The batch sizes `lane_parts` may use, from `smallest` up to the first at or above `largest`."""
    sizes = [smallest]
    while sizes[-1] < largest:
        sizes.append(sizes[-1] * LANE_BASE)
    return sizes


def runnable_parts(n: int, smallest: int, largest: int, ready: Callable[[int], bool],
                   keep: int = 0) -> tuple[list[int], list[int]]:
    """(the batches to run n lanes in now, the sizes whose kernels to get ready meanwhile).

    `lane_parts`, when every size it uses is `ready` (loaded, or loadable without compiling).  Otherwise
    the ready ladder size (up to `largest`'s bucket, READY_PADDING times n or READY_LANES) that pads n
    least, as many batches of it as n needs, and the missing sizes to compile in the background; when no
    size is ready, `lane_parts` as they are (the caller compiles what it must).  Batches of `keep` lanes or fewer are
    compiled differently (a single fit's quick kernels: fitting/compiled.py): where lane_parts uses one,
    nothing is replaced, and none replaces another size.
    """
    parts = lane_parts(n, smallest)
    missing = sorted({size for size in parts if not ready(size)}, reverse=True)
    if not missing or min(parts) <= keep:
        return parts, []
    # A small run may borrow a bigger run's kernel.
    sizes = ladder(smallest, max(largest, n * READY_PADDING, READY_LANES))
    have = [size for size in sizes if size > keep and size not in missing and ready(size)]
    if not have:
        return parts, []
    best = min(have, key=lambda size: (-(-n // size) * size, -size))
    return [best] * -(-n // best), missing


def ready_size(size: int, ready: Callable[[int], bool]) -> int:
    """`size` if its kernel is `ready`, else the smallest bucket above it (`size` times powers of LANE_BASE,
    up to READY_PADDING times it) whose kernel is; `size` when none is (then it is compiled)."""
    return next((bigger for bigger in ladder(size, size * READY_PADDING) if ready(bigger)), size)
