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
                   done=false(), cut=false(), failed=false(), narrow=false(), evaluations=zero())

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

    @property
    def is_bracketed(self) -> np.ndarray:
        return np.isfinite(self.b)

    def trials(self, which, *, secant: bool = False, newton: bool = False, margin: float = 0.0) -> np.ndarray:
        """The next x of searches `which`.

        Unbracketed: one more step outwards -- the step doubled from x0 each time, or with `secant`,
        the secant through x0 and the last inside point aimed at the level (doubling or tripling the
        distance where it points the wrong way), capped at `limit`.  Bracketed: with `newton`, a
        Newton step from the end nearer the level where it lands inside the bracket and that end
        has not stayed put twice; otherwise Illinois regula falsi, kept `margin` of the bracket's
        width away from its ends.
        """
        which = np.asarray(which, int)
        out = np.empty(which.size)
        for k, i in enumerate(which):
            out[k] = self._bracket_trial(i, newton, margin) if np.isfinite(self.b[i]) else self._outward_trial(i, secant)
        return out

    def _outward_trial(self, i: int, secant: bool) -> float:
        x0, sign, a = self.x0[i], self.sign[i], self.a[i]
        if a == x0:
            guess = x0 + sign * self.step[i]
        elif not secant:
            guess = x0 + 2.0 * (a - x0)
        else:
            slope = (self.fa[i] - self.f0[i]) / (a - x0)
            guess = x0 - self.f0[i] / slope if slope * sign > 0 else a + 2.0 * (a - x0)
            if (guess - a) * sign <= 0:
                guess = a + (a - x0)
        past = (guess - self.limit[i]) * sign >= 0
        return float(self.limit[i] if past else guess)

    def _bracket_trial(self, i: int, newton: bool, margin: float) -> float:
        a, fa, b, fb = self.a[i], self.fa[i], self.b[i], self.fb[i]
        lo, hi = min(a, b), max(a, b)
        if newton and self.repeat[i] < 2:
            x0, f0, s0 = (a, fa, self.ga[i]) if abs(fa) <= abs(fb) else (b, fb, self.gb[i])
            if np.isfinite(s0) and s0 != 0.0:
                x = x0 - f0 / s0
                if lo < x < hi:
                    return float(x)
        weight = 0.5 ** max(int(self.repeat[i]) - 1, 0)
        fa_w = fa * (weight if self.last[i] > 0 else 1.0)
        fb_w = fb * (weight if self.last[i] < 0 else 1.0)
        x = (a * fb_w - b * fa_w) / (fb_w - fa_w)
        inner = margin * (hi - lo)
        return float(np.clip(x, lo + inner, hi - inner))

    def record(self, which, x, f, g=None, *, ftol: float = 0.0, xtol: float = 0.0,
               max_evaluations: int | None = None, max_outward: int | None = None):
        """Take back f (and slopes g) at the trials x of searches `which`; close the searches that are done.

        Done: a non-finite f (failed); |f| <= ftol (the trial is the crossing); a trial inside a
        bracket already narrower than WIDTH_FLOOR of its x (or of 1); a bracket now narrower than
        xtol times the distance of its outer end from x0; an
        unbracketed search whose trial at `limit` is still inside (cut), or that has taken
        `max_outward` steps; `max_evaluations` reached.
        """
        which = np.asarray(which, int)
        x, f = np.asarray(x, float), np.asarray(f, float)
        g = np.full(x.shape, np.nan) if g is None else np.asarray(g, float)
        for i, xi, fi, gi in zip(which, x, f, g, strict=True):
            self.evaluations[i] += 1
            self.x[i], self.f[i] = xi, fi
            if not np.isfinite(fi):
                self.failed[i] = self.done[i] = True
                continue
            bracketed = np.isfinite(self.b[i])
            # A trial inside a bracket already narrower than WIDTH_FLOOR is the end (checked before the
            # trial narrows it further, so a jump reports the same point whatever came before).
            spent = bracketed and abs(self.b[i] - self.a[i]) <= WIDTH_FLOOR * max(abs(xi), 1.0)
            end = 1 if fi >= 0 else -1
            if end > 0:
                self.b[i], self.fb[i], self.gb[i] = xi, fi, gi
            else:
                self.a[i], self.fa[i], self.ga[i] = xi, fi, gi
            if bracketed:
                self.repeat[i] = self.repeat[i] + 1 if self.last[i] == end else 1
                self.last[i] = end
            elif end < 0 and xi == self.limit[i]:
                self.cut[i] = self.done[i] = True
                continue
            if abs(fi) <= ftol or spent:
                self.done[i] = True
                self.narrow[i] = spent
            elif np.isfinite(self.b[i]) and abs(self.b[i] - self.a[i]) <= xtol * abs(self.b[i] - self.x0[i]):
                self.done[i] = True
            if max_evaluations is not None and self.evaluations[i] >= max_evaluations:
                self.done[i] = True
            if max_outward is not None and not np.isfinite(self.b[i]) and self.evaluations[i] >= max_outward:
                self.done[i] = True

    def interpolated(self) -> np.ndarray:
        """The crossing by linear interpolation between the bracket's ends (the inside end where unbracketed)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            x = self.a + (0.0 - self.fa) * (self.b - self.a) / (self.fb - self.fa)
        return np.where(np.isfinite(self.b), np.where(self.fb == self.fa, self.b, x), self.a)
