"""Where many refitted profiles cross a level, all at once: expand to a bracket, then Illinois regula falsi.

Why one module: MINOS errors, the contour's rays, the Asimov forecast's crossings and a scan's
interval ends all look for the x where a refitted chi^2 rises by a level, and every trial x
costs a fit.  The fits are batched, so the search is vectorised over crossings: each round,
`Crossings.trials` proposes the next x of every crossing still open -- an expansion step while
it is not bracketed, an Illinois step (or a Newton step, where slopes are known) once it is --
the caller evaluates them in one call, and `Crossings.record` takes the values back.

f is the excess over the level (f < 0 inside, f >= 0 outside).  The Illinois rule: an end that
stays put while the other moves for the k-th time in a row (k >= 2) counts 0.5**(k - 1), so a
convex profile cannot pin one end of the bracket (11 refits on one side of a MINOS error became
2 with it).  Host NumPy throughout: the arrays are a handful of crossings long.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# A bracket narrower than this fraction of its x (or of 1) cannot be split further in float64: the
# crossing is the trial itself, or the profile jumps there (a reference grid changing with w).
WIDTH_FLOOR = 1e-12


@dataclasses.dataclass
class Crossings:
    """K crossing searches.  a/fa: the inside end (f < 0); b/fb: the outside end (NaN until bracketed).

    x0 is where each search starts (the best fit: f0 < 0 there); an unbracketed search steps away
    from it along `sign`, never past `limit`.  `last` (+1: b, -1: a, 0: neither yet) and `repeat`
    (moves of that end in a row) hold the Illinois weights; ga/gb are the ends' slopes df/dx
    where the caller knows them (Newton steps), NaN otherwise.
    """

    x0: np.ndarray
    f0: np.ndarray
    sign: np.ndarray
    limit: np.ndarray
    step: np.ndarray
    a: np.ndarray
    fa: np.ndarray
    b: np.ndarray
    fb: np.ndarray
    ga: np.ndarray
    gb: np.ndarray
    last: np.ndarray
    repeat: np.ndarray
    x: np.ndarray  # the latest trial and its excess (NaN before the first)
    f: np.ndarray
    done: np.ndarray
    cut: np.ndarray  # reached `limit` still inside: no crossing before it
    failed: np.ndarray  # a trial's value was not finite (its refit not certified)
    hit: np.ndarray  # ended on a trial within ftol of the level: that trial is the crossing
    narrow: np.ndarray  # ended inside a bracket narrower than WIDTH_FLOOR (a jump where |f| is not small)
    evaluations: np.ndarray

    @classmethod
    def outward(cls, x0, f0, sign, limit, step) -> "Crossings":
        """Searches that start inside at x0 (excess f0 < 0) and step outwards by `step`, along `sign`."""
        x0, f0, sign, limit, step = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, float))
                                                          for v in (x0, f0, sign, limit, step)))
        nan, false, zero = (lambda: np.full(x0.shape, np.nan)), (lambda: np.zeros(x0.shape, bool)), \
            (lambda: np.zeros(x0.shape, int))
        return cls(x0=x0.copy(), f0=f0.copy(), sign=sign.copy(), limit=limit.copy(), step=step.copy(), a=x0.copy(),
                   fa=f0.copy(), b=nan(), fb=nan(), ga=nan(), gb=nan(), last=zero(), repeat=zero(), x=nan(), f=nan(),
                   done=false(), cut=false(), failed=false(), hit=false(), narrow=false(), evaluations=zero())

    @classmethod
    def bracketed(cls, a, fa, b, fb, ga=None, gb=None) -> "Crossings":
        """Searches whose brackets are known: f(a) < 0 <= f(b), with slopes where known."""
        a, fa, b, fb = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, float)) for v in (a, fa, b, fb)))
        out = cls.outward(a, fa, np.sign(b - a), b, np.abs(b - a))
        out.b, out.fb = b.copy(), fb.copy()
        out.ga = np.full(a.shape, np.nan) if ga is None else np.atleast_1d(np.asarray(ga, float)).copy()
        out.gb = np.full(a.shape, np.nan) if gb is None else np.atleast_1d(np.asarray(gb, float)).copy()
        return out

    @property
    def open(self) -> np.ndarray:
        """Indices of the searches still running."""
        return np.flatnonzero(~self.done)

    def trials(self, which, *, secant: bool = False, newton: bool = False, margin: float = 0.0) -> np.ndarray:
        """The next x of searches `which`.

        Unbracketed: one more step outwards -- the step doubled from x0 each time, or with `secant`,
        the secant through x0 and the last inside point aimed at the level (doubling or tripling the
        distance where it points the wrong way), capped at `limit`.  Bracketed: with `newton`, a
        Newton step from the end nearer the level where it lands inside the bracket and that end
        has not stayed put twice; otherwise Illinois regula falsi, kept `margin` of the bracket's
        width away from its ends.
        """
        i = np.asarray(which, int)
        x0, sign, limit = self.x0[i], self.sign[i], self.limit[i]
        a, fa, b, fb = self.a[i], self.fa[i], self.b[i], self.fb[i]
        with np.errstate(all="ignore"):
            if secant:
                slope = (fa - self.f0[i]) / (a - x0)
                guess = np.where(slope * sign > 0, x0 - self.f0[i] / slope, a + 2.0 * (a - x0))
                guess = np.where((guess - a) * sign <= 0, a + (a - x0), guess)
            else:
                guess = x0 + 2.0 * (a - x0)
            guess = np.where(a == x0, x0 + sign * self.step[i], guess)
            outward = np.where((guess - limit) * sign >= 0, limit, guess)
            lo, hi = np.minimum(a, b), np.maximum(a, b)
            weight = 0.5 ** np.maximum(self.repeat[i] - 1, 0)
            fa_w = fa * np.where(self.last[i] > 0, weight, 1.0)
            fb_w = fb * np.where(self.last[i] < 0, weight, 1.0)
            inner = margin * (hi - lo)
            inside = np.clip((a * fb_w - b * fa_w) / (fb_w - fa_w), lo + inner, hi - inner)
            if newton:
                near_a = np.abs(fa) <= np.abs(fb)
                slope = np.where(near_a, self.ga[i], self.gb[i])
                step = np.where(near_a, a, b) - np.where(near_a, fa, fb) / slope
                usable = (self.repeat[i] < 2) & np.isfinite(slope) & (slope != 0.0) & (lo < step) & (step < hi)
                inside = np.where(usable, step, inside)
        return np.where(np.isfinite(b), inside, outward)

    def record(self, which, x, f, g=None, *, ftol: float = 0.0, xtol: float = 0.0,
               max_evaluations: int | None = None, max_outward: int | None = None):
        """Take back f (and slopes g) at the trials x of searches `which`; close the searches that are done.

        Done: a non-finite f (failed); |f| <= ftol (the trial is the crossing); a trial inside a
        bracket already narrower than WIDTH_FLOOR of its x (or of 1); a bracket now narrower than
        xtol times the distance of its outer end from x0; an unbracketed search whose trial at
        `limit` is still inside (cut), or that has taken `max_outward` steps; `max_evaluations` reached.
        """
        i = np.asarray(which, int)
        x, f = np.asarray(x, float), np.asarray(f, float)
        g = np.full(x.shape, np.nan) if g is None else np.asarray(g, float)
        self.evaluations[i] += 1
        self.x[i], self.f[i] = x, f
        finite = np.isfinite(f)
        bracketed = np.isfinite(self.b[i])
        # A trial inside a bracket already narrower than WIDTH_FLOOR is the end (checked before the trial
        # narrows it further, so a jump reports the same point whatever came before).
        spent = bracketed & (np.abs(self.b[i] - self.a[i]) <= WIDTH_FLOOR * np.maximum(np.abs(x), 1.0))
        outer, inner = finite & (f >= 0), finite & (f < 0)
        for mask, ends in ((outer, (self.b, self.fb, self.gb)), (inner, (self.a, self.fa, self.ga))):
            for array, value in zip(ends, (x, f, g), strict=True):
                array[i[mask]] = value[mask]
        moved = finite & bracketed
        end = np.where(f >= 0, 1, -1)
        self.repeat[i[moved]] = np.where(self.last[i] == end, self.repeat[i] + 1, 1)[moved]
        self.last[i[moved]] = end[moved]
        cut = inner & ~bracketed & (x == self.limit[i])
        landed = finite & ~cut
        hit, at_floor = landed & (np.abs(f) <= ftol), landed & spent
        width = np.abs(self.b[i] - self.a[i])
        with np.errstate(invalid="ignore"):
            narrowed = landed & np.isfinite(self.b[i]) & (width <= xtol * np.abs(self.b[i] - self.x0[i]))
        done = ~finite | cut | hit | at_floor | narrowed
        if max_evaluations is not None:
            done |= self.evaluations[i] >= max_evaluations
        if max_outward is not None:
            done |= ~np.isfinite(self.b[i]) & (self.evaluations[i] >= max_outward)
        self.failed[i] |= ~finite
        self.cut[i] |= cut
        self.hit[i] |= hit
        self.narrow[i] |= at_floor
        self.done[i] |= done

    def interpolated(self) -> np.ndarray:
        """The crossing by linear interpolation between the bracket's ends (the inside end where unbracketed)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            x = self.a + (0.0 - self.fa) * (self.b - self.a) / (self.fb - self.fa)
        return np.where(np.isfinite(self.b), np.where(self.fb == self.fa, self.b, x), self.a)
