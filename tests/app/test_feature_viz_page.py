"""The Feature visualisation page: AppTest for its controls, numbers and bad input; a real browser for clicks."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from mechmnistic import load_model
from mechmnistic.analysis import feature_viz as fv

from .conftest import assert_no_exception, wait_for_app
from .plotly_screen import screen_xy

APP = "../../app.py"
PAGE = "app_pages/feature_viz.py"


def _run(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()  # AppTest finds a page whose url_path differs from its file name only after a first run
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(PAGE)
    return at.run()


def _grid(at: AppTest) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def _texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def test_all_200_fc1_units_of_the_challenge_network_in_one_grid():
    at = _run(model="challenge-cnn")
    assert not at.exception
    grid = _grid(at)
    image, markers = grid["data"]
    assert image["type"] == "image" and image["source"].startswith("data:image/png;base64,")
    encoded = markers["customdata"]
    customdata = np.frombuffer(base64.b64decode(encoded["bdata"]), np.dtype(encoded["dtype"])).reshape(-1, 2)
    assert len(customdata) == 200 * 4  # each result and its three nearest training images
    assert customdata[:4, 0].tolist() == [0, 1, 1, 1] and customdata[4].tolist() == [0, 1]
    table = at.dataframe[0].value
    assert len(table) == 200 and table["Neuron Explorer"][17] == "./neuron?model=challenge-cnn&layer=fc1&unit=17"
    assert "clamped to [0, 1]" in _texts(at.caption)


def test_changing_the_model_drops_the_old_models_view():
    at = _run(model="challenge-cnn", layer="conv2", units="0-3", steps="5")
    assert at.text_input(key="features_units").value == "0-3"
    at.selectbox(key="model").set_value("mlp-2x64").run()
    assert not at.exception and not at.warning
    assert at.selectbox(key="features_layer").value == "layers.1"
    assert at.text_input(key="features_units").value == "all" and at.query_params["units"] == "all"
    assert at.number_input(key="features_steps").value == 5, "settings that mean the same on any model stay"


def test_the_page_shows_the_python_numbers():
    at = _run(model="challenge-cnn", units="175,76", nearest="2", steps="40", blur="0.5")
    assert not at.exception
    table = at.dataframe[0].value
    expected = fv.visualize_units(load_model("challenge-cnn"), "fc1", [76, 175],
                                  fv.FeatureVizConfig(steps=40, blur=0.5))
    assert list(table["target"]) == ["fc1 unit 76", "fc1 unit 175"]
    np.testing.assert_array_equal(table["objective at end"].to_numpy(np.float32), expected.final)
    nearest = fv.nearest_training_examples(expected.images, 2)
    assert table["nearest (similarity)"][0].startswith(f"#{nearest.indices[0, 0]} ")


def test_directions_and_unclamped_pixels():
    at = _run(model="challenge-cnn", target="directions", dirs="logit:1-0;pc1", free="1", steps="20", init="noise")
    assert not at.exception
    assert list(at.dataframe[0].value["target"]) == ["logit 1 − logit 0", "PC1"]
    assert "NOT clamped" in _texts(at.caption)


@pytest.mark.parametrize(
    "params, shown",
    [
        ({"units": "500"}, "out of range"),
        ({"units": "3;drop"}, "unknown unit group"),
        ({"target": "directions", "dirs": "bogus"}, "unknown direction"),
        ({"target": "directions", "dirs": ""}, "at least one direction"),
    ],
)
def test_bad_input_gives_a_message_and_never_crashes(params, shown):
    at = _run(model="challenge-cnn", **params)
    assert not at.exception
    assert shown in _texts([*at.warning, *at.error, *at.info])


def test_a_group_that_selects_no_units_says_so():
    """cnn-digits' conv1 has no dead channel: `dead` is a valid group that is empty here."""
    at = _run(model="cnn-digits", layer="conv1", units="dead")
    assert not at.exception
    assert "selects none of conv1's units" in _texts(at.info)


def test_a_clicked_result_opens_its_unit_in_the_neuron_explorer():
    at = _run(model="challenge-cnn", units="175,76")
    at.session_state["features_grid"] = {"selection": {
        "points": [{"customdata": {"0": 0, "1": 76}}], "point_indices": [4], "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    assert any(t.value == "Neuron Explorer" for t in at.title)
    assert (at.query_params["model"], at.query_params["layer"], at.query_params["unit"]) == ("challenge-cnn", "fc1",
                                                                                               "76")


def test_a_clicked_nearest_image_opens_the_classification_explorer():
    at = _run(model="challenge-cnn", units="175,76")
    at.session_state["features_grid"] = {"selection": {
        "points": [{"customdata": [1, 1696]}], "point_indices": [5], "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    assert any(t.value == "Classification Explorer" for t in at.title)
    assert at.query_params["train_index"] == "1696"


@pytest.mark.browser
def test_clicking_a_result_in_the_browser(page, app_url):
    page.set_viewport_size({"width": 1400, "height": 1400})
    page.goto(f"{app_url}/features?model=challenge-cnn&units=76,175&steps=30")
    wait_for_app(page, timeout_ms=300_000)
    assert_no_exception(page)
    plot = page.locator(".js-plotly-plot").first
    plot.wait_for()
    markers = plot.evaluate("(gd) => [gd._fullData[1].x[4], gd._fullData[1].y[4]]")  # the second result: unit 175
    x, y = screen_xy(plot, *markers)
    page.mouse.move(x, y)
    page.wait_for_selector(".hovertext", state="attached")  # the invisible marker is live under the pointer
    page.mouse.click(x, y)
    page.wait_for_url(re.compile(r"/neuron\?model=challenge-cnn&layer=fc1&unit=175$"))
    wait_for_app(page)
    assert_no_exception(page)
