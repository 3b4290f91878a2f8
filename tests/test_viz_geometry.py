"""Figure builders for geometry and feature visualisation: what they draw is exactly the arrays they get."""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from mechmnistic.analysis.geometry import Arrow, Loadings
from mechmnistic.viz.feature_viz import feature_grid
from mechmnistic.viz.geometry import explained_variance_figure, loadings_bars, loadings_scatter, pca_scatter

RNG = np.random.default_rng(0)
N = 1000
XY = RNG.normal(size=(N, 2))
LABELS = RNG.integers(0, 10, N)
CUSTOM = np.stack([np.arange(N), LABELS, (LABELS + 1) % 10], axis=1)


def test_categorical_scatter_has_one_webgl_trace_per_category_and_every_point():
    fig = pca_scatter(XY, CUSTOM, LABELS, "label", category_names=[str(d) for d in range(10)])
    assert len(fig.data) == 10 and all(isinstance(t, go.Scattergl) for t in fig.data)
    assert sum(len(t.x) for t in fig.data) == N
    for code, trace in enumerate(fig.data):
        points = np.asarray(trace.customdata)
        assert np.all(LABELS[points[:, 0]] == code) and np.all(points[:, 1] == code)
        np.testing.assert_allclose(trace.x, XY[points[:, 0], 0], rtol=1e-6)


def test_continuous_scatter_and_arrows():
    arrows = [Arrow("PC1", "pc", (0, 0), (2, 0), 1.0), Arrow("train:6", "template", (0, 0), (3, 4), 0.9)]
    values = RNG.normal(size=N)
    fig = pca_scatter(XY, CUSTOM, values, "score", arrows=arrows, axis_titles=("PC1 (60%)", "PC2 (29%)"))
    gl = [t for t in fig.data if isinstance(t, go.Scattergl)]
    assert len(gl) == 1 and gl[0].marker.colorbar.title.text == "score"
    np.testing.assert_allclose(gl[0].marker.color, values.astype(np.float32))
    heads = [(a.x, a.y, a.ax, a.ay) for a in fig.layout.annotations if a.showarrow]
    assert heads == [(2, 0, 0, 0), (3, 4, 0, 0)]
    template_dot = [t for t in fig.data if t.name == "train:6"]
    assert len(template_dot) == 1 and template_dot[0].x == (3,) and template_dot[0].y == (4,)
    assert fig.layout.xaxis.title.text == "PC1 (60%)"


def test_explained_variance_bars():
    fig = explained_variance_figure(np.array([0.6, 0.3, 0.05]))
    np.testing.assert_allclose(fig.data[0].y, [60, 30, 5])
    np.testing.assert_allclose(fig.data[1].y, [60, 90, 95])


def test_loadings_figures_carry_units():
    values = np.array([[0.1, -1.0], [2.0, 0.5], [-3.0, 0.0], [0.0, 0.2]])
    loadings = Loadings(values, ("PC1", "logit"), ("0", "1", "2", "3"), np.array([0, 1, 2, 3]))
    bars = loadings_bars(loadings, sort_by=0, top=2)
    assert list(bars.data[0].y) == ["2", "1"] and list(bars.data[0].x) == [-3.0, 2.0]
    assert list(bars.data[1].x) == [0.0, 0.5] and list(bars.data[0].customdata) == [2, 1]
    scatter = loadings_scatter(loadings, 0, 1, label_top=1)
    np.testing.assert_array_equal(scatter.data[0].x, values[:, 0])
    assert list(scatter.data[0].text) == ["", "", "2", ""]


def _decode(fig: go.Figure) -> np.ndarray:
    source = fig.data[0].source
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("RGB"))


def test_feature_grid_is_a_pixel_exact_mosaic():
    images = np.zeros((3, 28, 28))
    images[0, 5, 7] = 1.0
    nearest = np.zeros((3, 2, 28, 28), np.uint8)
    nearest[1, 1, 0, 0] = 255
    fig = feature_grid(images, ["u0", "u1", "u2"], clamped=True, units=[0, 1, 2], nearest_images=nearest,
                       nearest_indices=np.array([[10, 11], [12, 13], [14, 15]]),
                       nearest_similarity=np.full((3, 2), 0.5), columns=2)
    mosaic = _decode(fig)
    group = 3 * 29 - 1
    assert mosaic.shape == (2 * 28 + 6, 2 * group + 6, 3)
    assert tuple(mosaic[5, 7]) == (0, 0, 0) and tuple(mosaic[0, 0]) == (255, 255, 255)  # ink is dark
    second_group_left = group + 6
    assert tuple(mosaic[0, second_group_left + 2 * 29]) == (0, 0, 0)  # unit 1's second nearest, pixel (0, 0)
    markers = fig.data[1]
    assert len(markers.x) == 9
    assert [tuple(c) for c in markers.customdata[:3]] == [(0, 0), (1, 10), (1, 11)]
    assert markers.marker.opacity == 0 and fig.data[0].zsmooth is False


def test_unclamped_results_use_the_diverging_scale():
    images = np.zeros((2, 28, 28))
    images[0, 0, 0], images[1, 0, 0] = 2.0, -2.0
    mosaic = _decode(feature_grid(images, ["a", "b"], clamped=False, columns=2))
    assert tuple(mosaic[0, 0]) == (103, 0, 31)  # most positive: dark red
    assert tuple(mosaic[0, 28 + 6]) == (5, 48, 97)  # most negative: dark blue (second group)
    assert tuple(mosaic[1, 1]) == (247, 247, 247)  # zero: white
