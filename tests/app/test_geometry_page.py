"""The Activation geometry page: AppTest for every control and bad input, and a real browser for the scatter."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from mechmnistic import load_model
from mechmnistic.analysis import geometry as g

from .conftest import assert_no_exception, open_app_page, wait_for_app
from .plotly_screen import screen_xy

APP = "../../app.py"
PAGE = "app_pages/geometry.py"


def _run(**params) -> AppTest:
    return open_app_page(PAGE, **params)


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _scatter(at: AppTest) -> dict:
    return _figures(at)[0]


def _array(encoded) -> np.ndarray:
    """A numpy array from plotly's JSON (typed arrays arrive base64-encoded)."""
    if isinstance(encoded, dict):
        return np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=np.dtype(encoded["dtype"]))
    return np.asarray(encoded)


def _table(at: AppTest, column: str):
    """The first table with ``column``."""
    return next(df.value for df in at.dataframe if column in df.value.columns)


def _texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def test_default_view_shows_all_60000_training_points_by_label():
    at = _run(model="challenge-cnn")
    assert not at.exception
    assert at.selectbox(key="geometry_layer").value == "fc1"
    traces = [t for t in _scatter(at)["data"] if t["type"] == "scattergl"]
    assert len(traces) == 10 and sum(len(_array(t["x"])) for t in traces) == 60_000
    indices = np.concatenate([_array(t["customdata"]).reshape(-1, 3)[:, 0] for t in traces])
    assert sorted(indices.tolist()) == list(range(60_000))
    share = g.layer_pca(load_model("challenge-cnn"), "fc1").pca.explained_variance_ratio_[0]
    assert _scatter(at)["layout"]["xaxis"]["title"]["text"].startswith(f"PC1 ({share:.1%})")
    directions = _table(at, "spec")
    assert list(directions["spec"]) == ["logit:1-0"] and bool(directions["exact"][0])
    loadings = _table(at, "coordinate")
    assert len(loadings) == 200 and loadings["Neuron Explorer"][0].startswith("./neuron?model=challenge-cnn&layer=fc1")


def test_deep_link_sets_every_control_and_the_numbers_match_the_core():
    at = _run(model="mlp-1x64", layer="layers.0", x="2", y="3", color="score", template="train:6", invert="1",
              center="0.4",
              dirs="pc1;logit:3-8;template:train:6", sort="PC1")
    assert not at.exception, at.exception
    assert at.number_input(key="geometry_x").value == 2 and at.number_input(key="geometry_y").value == 3
    figure = _scatter(at)
    (points,) = [t for t in figure["data"] if t["type"] == "scattergl"]
    assert "s(x), t = 1 - train:6" in points["marker"]["colorbar"]["title"]["text"]
    model = load_model("mlp-1x64")
    fit = g.layer_pca(model, "layers.0")
    heads = [(a["x"], a["y"]) for a in figure["layout"]["annotations"] if a.get("showarrow")]
    template = g.plane_arrow(fit, g.build_direction(model, fit, "template:train:6"), (1, 2), 1.0)
    assert heads[2] == pytest.approx(template.end)
    np.testing.assert_allclose(heads[2], fit.scores[6, 1:3], atol=1e-3)
    table = _table(at, "coordinate")
    assert table["PC1"].is_monotonic_decreasing and len(table) == 64


def test_region_colouring_uses_the_typed_band():
    at = _run(model="challenge-cnn", color="region", template="train:6", low="-30", high="-15")
    assert not at.exception
    names = [t["name"] for t in _scatter(at)["data"] if t["type"] == "scattergl"]
    assert names == list(g.REGION_NAMES)


@pytest.mark.parametrize(
    "params, shown",
    [
        ({"x": "2", "y": "2"}, "same component"),
        ({"color": "score", "template": "train:99999"}, "out of range"),
        ({"color": "score", "template": "../../etc"}, "is not 'train:N'"),
        ({"color": "score", "template": "unit:fc1:999"}, "out of range"),
        ({"color": "region", "low": "5", "high": "1"}, "Type a band"),
        ({"dirs": "bogus;pc1"}, "unknown direction"),
        ({"dirs": "fit:pc1=500..900@pc2"}, "only 0 point"),
        ({"dirs": "template:nope"}, "use train:N, test:N or unit:LAYER:N"),
    ],
)
def test_bad_url_input_gives_a_message_and_never_crashes(params, shown):
    at = _run(model="challenge-cnn", **params)
    assert not at.exception
    assert shown in _texts([*at.warning, *at.error, *at.info])


def test_a_clicked_point_opens_that_training_image():
    at = _run(model="challenge-cnn")
    at.session_state["geometry_scatter"] = {"selection": {
        "points": [{"customdata": {"0": 6, "1": 1, "2": 1}}], "point_indices": [3], "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    assert any(t.value == "Classification Explorer" for t in at.title)
    assert (at.query_params["model"], at.query_params["train_index"]) == ("challenge-cnn", "6")


def test_a_clicked_unit_opens_the_neuron_explorer():
    at = _run(model="challenge-cnn")
    at.session_state["geometry_bars"] = {"selection": {
        "points": [{"customdata": 175}], "point_indices": [0], "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    assert any(t.value == "Neuron Explorer" for t in at.title)
    assert (at.query_params["layer"], at.query_params["unit"]) == ("fc1", "175")


def test_a_box_selection_becomes_a_fitted_direction():
    at = _run(model="challenge-cnn")
    at.session_state["geometry_scatter"] = {"selection": {
        "points": [{"customdata": [1, 1, 1]}] * 5, "point_indices": [1, 2, 3, 4, 5],
        "box": [{"xref": "x", "yref": "y", "x": [-3, -30], "y": [2, 40]}], "lasso": []}}
    at.run()
    assert "fit:pc1=-30..-3,pc2=2..40@pc2" in _texts(at.info)
    at.button(key="geometry_fit").click().run()
    assert not at.exception
    assert at.query_params["dirs"] == "logit:1-0;fit:pc1=-30..-3,pc2=2..40@pc2"
    assert "fit:pc1=-30..-3,pc2=2..40@pc2" in list(_table(at, "spec")["spec"])


def test_changing_the_model_drops_the_old_models_view():
    at = _run(model="challenge-cnn", dirs="logit:1-0;pc3")
    at.selectbox(key="model").set_value("mlp-2x64").run()
    assert not at.exception and not at.warning
    assert at.selectbox(key="geometry_layer").value == "layers.1"


# ------------------------------------------------------------------------------------ browser
@pytest.mark.browser
def test_scatter_renders_60000_points_with_webgl_and_a_click_opens_the_example(page, app_url):
    page.set_viewport_size({"width": 1400, "height": 1400})
    page.goto(f"{app_url}/geometry?model=challenge-cnn")
    wait_for_app(page, timeout_ms=300_000)
    assert_no_exception(page)
    # The scatter is the page's WebGL chart; Plotly lays out and draws it a moment after it mounts.
    plot = page.locator(".js-plotly-plot").filter(has=page.locator("canvas")).first
    plot.wait_for(timeout=120_000)
    plot.evaluate("gd => new Promise(done => { const check = () => (gd._fullData || []).some("
                  "t => t.type === 'scattergl') ? done() : setTimeout(check, 50); check(); })")
    drawn = plot.evaluate("""(gd) => {
        const traces = gd._fullData.filter(t => t.type === 'scattergl');
        const canvas = gd.querySelector('canvas');
        const gl = canvas && (canvas.getContext('webgl') || canvas.getContext('webgl2'));
        return {points: traces.reduce((n, t) => n + t.x.length, 0), traces: traces.length, webgl: !!gl,
                pixels: canvas ? canvas.width * canvas.height : 0};
    }""")
    assert drawn == {**drawn, "points": 60_000, "traces": 10, "webgl": True} and drawn["pixels"] > 0
    clue = g.layer_pca(load_model("challenge-cnn"), "fc1").scores[6]
    x, y = screen_xy(plot, clue[0], clue[1])  # the challenge's clue image: the far end of one arm, alone
    page.mouse.move(x, y)
    assert "#6label 1, predicted 1" in page.wait_for_selector(".hovertext").text_content()  # on that very point
    page.mouse.click(x, y)
    page.wait_for_url(re.compile(r"/classify\?model=challenge-cnn&train_index=6$"))
    wait_for_app(page)
    assert_no_exception(page)
    assert page.get_by_role("heading", name="Classification Explorer").is_visible()


@pytest.mark.browser
def test_box_select_then_fit_adds_an_arm_arrow(page, app_url):
    page.set_viewport_size({"width": 1400, "height": 1400})
    page.goto(f"{app_url}/geometry?model=challenge-cnn")
    wait_for_app(page, timeout_ms=300_000)
    plot = page.locator(".js-plotly-plot").first
    plot.hover()
    page.locator("[data-title='Box Select']").first.click()
    (x0, y0), (x1, y1) = screen_xy(plot, -20, 28), screen_xy(plot, -3, 2)  # around the left arm
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=5)
    page.mouse.up()
    wait_for_app(page)
    page.get_by_role("button", name="Fit a direction to these points").click()
    page.wait_for_url(re.compile(r"dirs=logit(%3A|:)1-0(%3B|;)fit(%3A|:)pc1"))
    wait_for_app(page)
    assert_no_exception(page)
    # The chart redraws after the script finishes: wait for the logit difference's arrow and the new fit's.
    page.wait_for_function("""() => {
        const gd = document.querySelector('.js-plotly-plot');
        return gd && gd._fullLayout && gd._fullLayout.annotations.filter(a => a.showarrow).length === 2;
    }""", timeout=60_000)
    assert page.locator(".annotation-text", has_text="along PC2").count() == 1  # the fit's label
