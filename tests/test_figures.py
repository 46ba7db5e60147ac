"""Every figure kind, rendered and read back as a reader would: axes labelled (no stray
underscores outside mathtext), every legend entry drawn inside its axes, no marker cut by the
figure's edge, and the vector formats written when asked for."""

from __future__ import annotations

import re

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import QuadMesh
from matplotlib.lines import Line2D

from qfdjax import FitConfig, ScanConfig, run_scan
from qfdjax.scans import plots, profile_plots


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures") / "scan"
    return run_scan(ScanConfig(beta=(2.95, 3.25, 4), w=(0.005, 0.05, 3), fit=FitConfig(starts=3)), out,
                    progress=False), out


def _captured(monkeypatch, draw, *args):
    figures = []
    for module in (plots, profile_plots):
        monkeypatch.setattr(module, "save_figure", lambda fig, path, **kw: figures.append(fig))
    draw(*args)
    assert len(figures) == 1
    fig = figures[0]
    FigureCanvasAgg(fig).draw()
    return fig


def _plain_text_ok(text: str) -> bool:
    # Outside $...$ an underscore is printed literally ("chi2_min"): a defect on a paper's figure.
    return "_" not in re.sub(r"\$[^$]*\$", "", text)


def _texts_do_not_overlap(fig, name):
    """Titles, axis labels, the figure's title and texts placed in the axes never overprint one another."""
    renderer = fig.canvas.get_renderer()
    texts = [fig._suptitle] if getattr(fig, "_suptitle", None) is not None else []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
    shown = [t for t in texts if t is not None and t.get_visible() and t.get_text().strip()]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in shown]
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            overlap_x = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            overlap_y = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            assert not (overlap_x > 1 and overlap_y > 1), f"{name}: {a!r} overprints {b!r}"


def _covers(above, below) -> bool:
    """Whether `above`, drawn at the same pixels, hides `below`: a line at least as wide over a line; a
    filled marker at least as large over a marker (a "+" over a star leaves the star visible)."""
    if below.get_linestyle() not in ("None", "", " "):
        return above.get_linestyle() not in ("None", "", " ") and above.get_linewidth() >= below.get_linewidth()
    return (above.get_marker() in Line2D.filled_markers and above.get_fillstyle() == "full"
            and above.get_markerfacecolor() not in ("none", "None") and above.get_markersize() >= below.get_markersize())


def _legend_handles_are_visible(ax, name):
    """A legend entry's line is drawn and not hidden under another line at the same pixels (the Delta chi2 = 1
    lines under the Delta chi2 = 4 lines when both sat at a scan's edge): the later-drawn line covers the
    earlier one unless the earlier is wider."""
    legend = ax.get_legend()
    if legend is None:
        return
    labelled = {t.get_text() for t in legend.get_texts()}
    order = sorted(enumerate(ax.lines), key=lambda pair: (pair[1].get_zorder(), pair[0]))
    drawn = [line for _, line in order]
    for position, line in enumerate(drawn):
        if line.get_label() not in labelled:
            continue
        shown_as = line.get_label()
        assert line.get_visible() and (line.get_alpha() is None or line.get_alpha() > 0), \
            f"{name}: legend entry {shown_as!r} names an invisible line"
        path = line.get_transform().transform(np.column_stack(line.get_data()).astype(float))
        for above in drawn[position + 1:]:
            if not above.get_visible() or len(above.get_xdata()) != len(line.get_xdata()):
                continue
            other = above.get_transform().transform(np.column_stack(above.get_data()).astype(float))
            if np.allclose(path, other, atol=1.0) and _covers(above, line):
                raise AssertionError(f"{name}: legend entry {shown_as!r} is covered by {above.get_label()!r}")


def _check_figure(fig, name):
    _texts_do_not_overlap(fig, name)
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        is_colorbar = hasattr(ax, "_colorbar")
        has_data = bool(ax.lines or ax.collections)
        if has_data and not is_colorbar:
            assert ax.get_xlabel(), f"{name}: an axes without an x label"
        for text in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()):
            assert _plain_text_ok(text), f"{name}: literal underscore in {text!r}"
        for text in [t.get_text() for t in ax.texts] + [t.get_text() for t in (ax.get_legend().get_texts()
                                                                              if ax.get_legend() else [])]:
            assert not re.search(r"χ² = -", text), f"{name}: a negative chi² printed: {text!r}"
            assert _plain_text_ok(text), f"{name}: literal underscore in {text!r}"
        _legend_handles_are_visible(ax, name)
        legend = ax.get_legend()
        if legend is not None:
            extent = legend.get_window_extent(renderer)
            assert (extent.x0 >= box.x0 - 1 and extent.x1 <= box.x1 + 1 and extent.y0 >= box.y0 - 1
                    and extent.y1 <= box.y1 + 1), f"{name}: the legend runs past the figure's edge"
            xlim, ylim = sorted(ax.get_xlim()), sorted(ax.get_ylim())
            for label in legend.get_texts():
                assert _plain_text_ok(label.get_text()), f"{name}: literal underscore in {label.get_text()!r}"
                twin = [line for line in ax.lines if line.get_label() == label.get_text()]
                for line in twin:
                    x, y = (np.asarray(v, float) for v in line.get_data())
                    if line.get_transform() != ax.transData:
                        continue  # axhline/axvline: drawn across the axes by construction
                    inside = ((x >= xlim[0] - 1e-12 * abs(xlim[0])) & (x <= xlim[1] + 1e-12 * abs(xlim[1]))
                              & (y >= ylim[0] - 1e-12 * abs(ylim[0])) & (y <= ylim[1] + 1e-12 * abs(ylim[1])))
                    assert inside.any(), f"{name}: legend entry {label.get_text()!r} is drawn outside its axes"
        for mesh in [c for c in ax.collections if isinstance(c, QuadMesh)]:
            # Every cell fully inside the axes: none cut by the limits, none falling off a log axis.
            corners = mesh.get_coordinates()
            xlim, ylim = sorted(ax.get_xlim()), sorted(ax.get_ylim())
            assert corners[..., 0].min() >= xlim[0] * (1 - 1e-9) and corners[..., 0].max() <= xlim[1] * (1 + 1e-9), name
            assert corners[..., 1].min() >= ylim[0] * (1 - 1e-9) and corners[..., 1].max() <= ylim[1] * (1 + 1e-9), name
        for line in ax.lines:
            if line.get_marker() in (None, "None", "", " ") or not line.get_visible():
                continue
            extent = line.get_window_extent(renderer)
            assert (extent.x0 >= box.x0 - 1 and extent.x1 <= box.x1 + 1 and extent.y0 >= box.y0 - 1
                    and extent.y1 <= box.y1 + 1), f"{name}: marker {line.get_label()!r} cut by the figure's edge"


@pytest.mark.parametrize("kind", ["chi2_map", "profiles", "parameter_maps", "identifiability"])
def test_scan_figures_read_as_a_paper_would(scan, monkeypatch, tmp_path, kind):
    record, _ = scan
    fig = _captured(monkeypatch, getattr(plots, f"plot_{kind}"), record, tmp_path / f"{kind}.png")
    _check_figure(fig, kind)
    if kind == "profiles":
        # The Delta chi2 = 1 and 4 levels are 1e-4 of this profile's span: stated in the title, not drawn as
        # invisible lines with legend entries.
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "Δχ² = 1" not in labels and "Δχ² = 1: " in ax.get_title()


def test_log_w_cells_are_centred_geometrically_on_their_nodes(scan, monkeypatch, tmp_path):
    """On a log w axis each cell's edges are the geometric midpoints between nodes (arithmetic ones put the
    w = 0.005 row of a 3-row log grid almost entirely off the axes), and the outer cells as wide as the next."""
    record, _ = scan
    w = np.asarray(record["w"], float)
    fig = _captured(monkeypatch, plots.plot_chi2_map, record, tmp_path / "map.png")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    edges = mesh.get_coordinates()[:, 0, 1]
    np.testing.assert_allclose(edges[1:-1], np.sqrt(w[1:] * w[:-1]), rtol=1e-12)
    np.testing.assert_allclose(edges[0] * edges[1], w[0] ** 2, rtol=1e-12)  # w[0] is the outer cell's log-centre
    np.testing.assert_allclose(sorted(ax.get_ylim()), [edges[0], edges[-1]], rtol=1e-12)


def test_a_scan_fitted_exactly_everywhere_says_so_instead_of_drawing_rounding(scan, monkeypatch, tmp_path):
    import copy

    record = copy.deepcopy(scan[0])
    noise = np.random.default_rng(0).normal(0.0, 1e-21, np.shape(record["chi2"]))
    record["chi2"] = noise.tolist()
    record["analysis"]["chi2_min"] = float(noise.min())
    record["analysis"]["chi2_min_grid"] = float(noise.min())
    record["analysis"]["minimum"]["chi2"] = float(noise.min())
    for key in ("profile_beta", "profile_w"):
        axis = "beta" if key == "profile_beta" else "w"
        record["analysis"][key]["delta_chi2"] = (noise.min(axis=1 if axis == "beta" else 0) - noise.min()).tolist()
    for kind in ("chi2_map", "profiles"):
        fig = _captured(monkeypatch, getattr(plots, f"plot_{kind}"), record, tmp_path / f"{kind}.png")
        _check_figure(fig, kind)
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert any("0 to rounding at every grid point" in t for t in texts), kind
        assert not any(isinstance(c, QuadMesh) for ax in fig.axes for c in ax.collections), kind


def test_coinciding_interval_ends_are_one_line_named_for_both(scan, monkeypatch, tmp_path):
    record, _ = scan
    fig = _captured(monkeypatch, plots.plot_profiles, record, tmp_path / "profiles.png")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    prof = record["analysis"]["profile_beta"]
    ends_1 = [e for e in prof["interval"] if e is not None]
    ends_4 = [e for e in prof["interval_4"] if e is not None]
    span = np.ptp(record["beta"])
    if ends_1 and ends_4 and abs(ends_1[0] - ends_4[0]) < 0.005 * span:
        assert any("Δχ² = 1 and 4 ends" in label for label in labels)
        assert not any(label.startswith("Δχ² = 4 ends") for label in labels)
    else:
        pytest.skip("this scan's interval ends are apart")


@pytest.mark.parametrize("exact", [True, False])
def test_toys_figure(monkeypatch, tmp_path, exact):
    from qfdjax.stats import toy_output

    rng = np.random.default_rng(1)
    n = 300
    chi2 = rng.normal(0, 1e-22, n) if exact else rng.chisquare(1, n)
    summary = {"ndf": 0 if exact else 1, "chi2_observed": -3e-23 if exact else 1.3, "p_value": None if exact else 0.25,
               "p_value_upper_95": None, "p_value_error": 0.02, "n": n, "n_valid": n, "beta": 3.1, "w": 0.015,
               "coverage": {"beta": {"0.6827": 0.7, "0.6827_error": 0.02}, "w": {"0.6827": 0.7, "0.6827_error": 0.02}},
               "fraction_on_bound": {"mu.U": 0.0, "tau.U": 0.0 if exact else 0.4}}
    same = rng.chisquare(1, n)
    arrays = {"valid": np.ones(n, bool), "chi2": chi2, "dchi2_truth_beta": same, "dchi2_truth_w": same}
    figures = []
    monkeypatch.setattr(toy_output, "save_figure", lambda fig, path, **kw: figures.append(fig), raising=False)
    import qfdjax.io

    monkeypatch.setattr(qfdjax.io, "save_figure", lambda fig, path, **kw: figures.append(fig))
    toy_output.plot_toys(summary, arrays, tmp_path / "toys.png")
    fig = figures[0]
    FigureCanvasAgg(fig).draw()
    _check_figure(fig, "toys")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("fitted exactly" in t for t in texts) == exact
    assert any("no toy's optimum is on a bound" in t for t in texts) == exact
    # Equal beta and w histograms are told apart by their line styles.
    styles = {p.get_linestyle() for p in fig.axes[1].patches}
    assert len(styles) >= 2


def test_fc_map_and_sensitivity_figures(scan, monkeypatch, tmp_path):
    import json
    import shutil

    import qfdjax
    import qfdjax.io
    from qfdjax.scans.fc_plot import plot_fc
    from qfdjax.sensitivity import plot_sensitivity

    copy = tmp_path / "scan"
    shutil.copytree(scan[1], copy)
    record = qfdjax.fc(copy, 4, chunk=4).to_dict()
    figures = []
    monkeypatch.setattr(qfdjax.io, "save_figure", lambda fig, path, **kw: figures.append(fig))
    plot_fc(record, tmp_path / "fc.png")
    from pathlib import Path

    plot_sensitivity(json.loads(Path("experiments/sensitivity/sensitivity.json").read_text()), tmp_path / "s.png")
    for fig, name in zip(figures, ("fc_map", "sensitivity"), strict=True):
        FigureCanvasAgg(fig).draw()
        _check_figure(fig, name)
        assert all(ax.get_title() for ax in fig.axes if ax.lines or ax.collections), f"{name}: an untitled panel"


def test_parameter_profile_figure(monkeypatch, tmp_path):
    import qfdjax
    from qfdjax.fitting import param_profile

    r = qfdjax.fit(3.1, 0.015, space=qfdjax.read_bounds("experiments/configs/identifiable_mu_tau_U.toml"))
    figures = []
    monkeypatch.setattr(param_profile, "save_figure", lambda fig, path, **kw: figures.append(fig))
    param_profile._plot(r.profile("mu.U", points=7), tmp_path / "p.png")
    FigureCanvasAgg(figures[0]).draw()
    _check_figure(figures[0], "parameter profile")
    assert any(isinstance(a, Line2D) for a in figures[0].axes[0].lines)


def test_report_writes_vector_figures(scan, tmp_path, capsys):
    import shutil

    from qfdjax.cli import main

    _, out = scan
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert main(["report", str(copy), "--format", "svg"]) == 0
    for name in ("chi2_map", "profiles", "parameter_maps", "identifiability"):
        text = (copy / f"{name}.svg").read_text()
        assert text.lstrip().startswith("<?xml") and "<svg" in text
    capsys.readouterr()
    assert main(["report", str(copy), "--format", "eps"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "format = 'eps' is unknown: must be one of png, pdf, svg" in err, err
    assert main(["scan", "--beta", "3.0", "3.1", "2", "--w", "0.01", "0.02", "2", "--format", "eps", "--out",
                 str(tmp_path / "never")]) == 2
    assert "format = 'eps'" in capsys.readouterr().err and not (tmp_path / "never").exists()


def test_the_checks_catch_what_they_are_for():
    """The figure checks fail on the defects they exist for: overprinted text, a negative chi2, an underscore."""
    from matplotlib.figure import Figure

    for draw, message in ((lambda ax: (ax.text(0.5, 0.5, "one label"), ax.text(0.5, 0.5, "another")), "overprints"),
                          (lambda ax: ax.text(0.1, 0.9, "χ² = -3e-22"), "negative"),
                          (lambda ax: ax.set_title("chi2_min"), "underscore"),
                          (lambda ax: (ax.axvline(0.5, color="C1", label="Δχ² = 1"),
                                       ax.axvline(0.5, color="C2", label="Δχ² = 4"), ax.legend()), "covered")):
        fig = Figure()
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1])
        ax.set_xlabel("x")
        draw(ax)
        FigureCanvasAgg(fig).draw()
        with pytest.raises(AssertionError, match=message):
            _check_figure(fig, "probe")
