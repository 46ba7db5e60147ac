"""The one crossing search (fitting/roots.py) that MINOS, the contour's rays, the forecast and a scan's
interval ends use: expansion, Illinois, Newton, bounds, failures."""

import numpy as np
import pytest

from qfdjax.fitting.roots import Crossings


def _run(search, f, **record):
    calls = 0
    while search.open.size:
        which = search.open
        x = search.trials(which, secant=record.pop("secant", False), newton=record.pop("newton", False))
        calls += 1
        search.record(which, x, f(x), **record)
    return calls


def test_outward_search_brackets_and_converges_on_both_sides_of_a_parabola():
    # chi^2 = (x - 2)^2 / 0.3^2: Delta chi^2 = 1 at 2 -+ 0.3.
    f = lambda x: ((x - 2.0) / 0.3) ** 2 - 1.0  # noqa: E731
    search = Crossings.outward(2.0, -1.0, [-1.0, 1.0], [-10.0, 10.0], 0.05)
    _run(search, f, xtol=1e-9)
    np.testing.assert_allclose(search.interpolated(), [1.7, 2.3], rtol=1e-9)
    assert not search.cut.any() and not search.failed.any()


def test_secant_expansion_aims_at_the_level_through_x0_and_the_last_inside_point():
    search = Crossings.outward(2.0, -1.0, 1.0, 10.0, 0.1)
    assert search.trials([0], secant=True)[0] == pytest.approx(2.1)
    search.record([0], [2.1], [-0.5])  # half way up: the line through (2, -1) and (2.1, -0.5) reaches 0 at 2.2
    assert search.trials([0], secant=True)[0] == pytest.approx(2.2)
    search.record([0], [2.2], [-1.2])  # below x0 itself: the secant points back, the distance is tripled instead
    assert search.trials([0], secant=True)[0] == pytest.approx(2.6)
    assert search.trials([0])[0] == pytest.approx(2.4)  # doubling


def test_illinois_does_not_stall_on_a_convex_profile():
    """Plain regula falsi on a steep convex excess keeps one end fixed and creeps; Illinois halves its
    weight after the other end moved twice in a row."""
    f = lambda x: np.expm1(8.0 * x) - 1.0  # noqa: E731  root at log(2)/8
    search = Crossings.bracketed(0.0, f(np.array(0.0)), 1.0, f(np.array(1.0)))
    _run(search, f, ftol=1e-12)
    assert search.x[0] == pytest.approx(np.log(2.0) / 8.0, rel=1e-10)
    assert search.hit[0] and abs(search.f[0]) <= 1e-12  # ended on its trial, which callers then report
    a, b, plain = 0.0, 1.0, 0
    while abs(f(a)) > 1e-12 and plain < 1000:  # the same bracket without Illinois weights
        x = (a * f(b) - b * f(a)) / (f(b) - f(a))
        a, b, plain = (x, b, plain + 1) if f(x) < 0 else (a, x, plain + 1)
    assert search.evaluations[0] <= 20 < plain


def test_newton_steps_use_the_slopes_and_stay_inside_the_bracket():
    f = lambda x: x ** 3 - 2.0  # noqa: E731
    g = lambda x: 3.0 * x ** 2  # noqa: E731
    search = Crossings.bracketed(1.0, f(1.0), 2.0, f(2.0), ga=g(1.0), gb=g(2.0))
    while search.open.size:
        which = search.open
        x = search.trials(which, newton=True, margin=1e-3)
        assert np.all((x > 1.0) & (x < 2.0))
        search.record(which, x, f(x), g(x), ftol=1e-13)
    assert search.x[0] == pytest.approx(2.0 ** (1 / 3), rel=1e-12)
    assert search.evaluations[0] <= 8


def test_a_bound_before_the_crossing_cuts_the_search_there():
    f = lambda x: ((x - 2.0) / 0.3) ** 2 - 1.0  # noqa: E731
    search = Crossings.outward(2.0, -1.0, [-1.0, 1.0], [1.9, 10.0], 0.05)
    _run(search, f, xtol=1e-9)
    assert search.cut.tolist() == [True, False]
    assert not search.hit.any()  # the cut side stopped inside, the other on its bracket's width (xtol)
    assert search.interpolated()[0] == 1.9  # the lower side reports the bound


def test_a_failed_evaluation_closes_only_its_own_search():
    def f(x):
        out = ((x - 2.0) / 0.3) ** 2 - 1.0
        return np.where(x < 2.0, np.nan, out)

    search = Crossings.outward(2.0, -1.0, [-1.0, 1.0], [-10.0, 10.0], 0.05)
    _run(search, f, xtol=1e-9)
    assert search.failed.tolist() == [True, False]
    assert search.interpolated()[1] == pytest.approx(2.3, rel=1e-9)


def test_an_unbracketed_search_stops_after_its_outward_steps():
    f = lambda x: -np.ones_like(x)  # noqa: E731  never reaches the level
    search = Crossings.outward(0.0, -1.0, 1.0, np.inf, 1.0)
    _run(search, f, max_outward=5)
    assert search.evaluations[0] == 5 and not np.isfinite(search.b[0])
    assert search.a[0] == 16.0  # 1, 2, 4, 8, 16: doubling from x0
