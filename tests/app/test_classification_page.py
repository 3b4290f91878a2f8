"""The Classification Explorer in AppTest: deep links, bad parameters, example pickers, drawings, click-throughs."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from playwright.sync_api import expect
from streamlit.testing.v1 import AppTest

from mechmnistic.analysis.conv import pooled_cell_positions
from mechmnistic.analysis.layer_attribution import layer_attribution
from mechmnistic.analysis.logit_effects import explain_class, logit_effects
from mechmnistic.analysis.predictions import indices_of_digit, misclassified, split_predictions
from mechmnistic.canvas_sim import render_on_canvas
from mechmnistic.models import ModelCard, build_model, cnn_config
from mechmnistic.preprocess import preprocess_drawing
from mechmnistic.viz import classification as classification_viz
from ui import attribution_panels
from ui.links import (
    ACTIVATIONS,
    CLASSIFY_PANEL_PARAM,
    CLASSIFY_PANELS,
    CLASSIFY_TABS,
    EARLIER,
    EFFECTS,
    IMPORTANT,
    LATENTS,
    NEURON_VIEW_PARAM,
    ON_INPUT,
)
from ui.tabs import Tab

from ..conftest import BUNDLED_MODELS
from .conftest import assert_no_exception, wait_for_app
from .tabs import open_tab

APP = "../../app.py"
PAGE = "app_pages/classification_explorer.py"
#: Above the tabs, whichever is open: the input, the logits and the probabilities, and their downloads.
ALWAYS_CHARTS = {"classify_input_figure", "classify_logits", "classify_probabilities"}
ALWAYS_DOWNLOADS = {"classify_dl_input", "classify_dl_logits"}
#: Each tab's own charts and downloads (the earlier layers' depend on the model).
TAB_CHARTS = {EFFECTS: {"classify_effects"},
              IMPORTANT: {"classify_important_figure", "classify_combined"},
              ACTIVATIONS: {"classify_activations", "classify_weights"}}
TAB_DOWNLOADS = {EFFECTS: {"classify_dl_effects"},
                 IMPORTANT: {"classify_dl_important", "classify_dl_embeddings", "classify_dl_combined"},
                 ACTIVATIONS: {"classify_dl_activations", "classify_dl_weights"}}


def _open(**params: str) -> AppTest:
    """The app on the Classification Explorer with ``params`` in the URL (as a deep link arrives)."""
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page(PAGE)
    at.query_params.clear()
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def _open_tab(at: AppTest, tab: Tab) -> AppTest:
    return open_tab(at, CLASSIFY_PANEL_PARAM, tab, EFFECTS)


def _chart_keys(at: AppTest) -> set[str]:
    return {chart.key for chart in at.get("plotly_chart")}


def _figures(at: AppTest) -> dict[str, dict]:
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {(spec["layout"].get("title") or {}).get("text", ""): spec for spec in specs}


def _array(value) -> np.ndarray:
    """A Plotly JSON array: a plain list, or a typed array ``{"dtype", "bdata", "shape"}`` (base64)."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.asarray(value)


def _prediction_shown(at: AppTest) -> int:
    heading = next(m.value for m in at.markdown if m.value.startswith("#### Predicted class"))
    return int(heading.rsplit(" ", 1)[1])


def _canvas_drawing(canvas_rgba: np.ndarray) -> dict:
    """What the drawing component reports for a canvas image (see ../shared/notes/testing-streamlit.md)."""
    buffer = io.BytesIO()
    Image.fromarray(canvas_rgba).save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return {"drawing": {"raw": {"objects": [{"type": "path"}]}, "data": url}}


def test_deep_link_to_a_test_example(bundled, mnist_test):
    at = _open(test_index="8")
    assert not at.exception
    assert at.session_state["classify_test_index"] == 8
    assert at.query_params["test_index"] == "8" and at.query_params["model"] == "mlp-1x64"
    expected = logit_effects(bundled("mlp-1x64"), mnist_test.images[8])
    assert _prediction_shown(at) == expected.prediction
    figures = _figures(at)
    effects = next(spec for title, spec in figures.items() if title.startswith("Logit effects"))
    np.testing.assert_allclose(_array(effects["data"][0]["z"]), expected.effects, rtol=1e-6)
    assert len(_array(effects["data"][1]["x"])) == 10 * 65, "one clickable marker per cell"
    logits = _array(figures["Logits"]["data"][0]["y"])
    np.testing.assert_allclose(logits, expected.logits, rtol=1e-6)
    assert CLASSIFY_PANEL_PARAM not in at.query_params, "the first tab is the default, so the URL need not name it"
    for tab in CLASSIFY_PANELS:  # every tab offers the numbers it shows, besides the input and the logits
        downloads = {button.key for button in _open_tab(at, tab).get("download_button")}
        assert downloads == ALWAYS_DOWNLOADS | TAB_DOWNLOADS[tab], tab


def test_deep_link_to_a_training_image():
    at = _open(train_index="6")
    assert not at.exception
    assert at.session_state["classify_source"] == "Training image"
    assert at.session_state["classify_train_index"] == 6
    assert at.query_params["train_index"] == "6" and "test_index" not in at.query_params
    assert any("train image #6" in m.value for m in at.markdown)


def test_changing_the_example_updates_the_url(bundled, mnist_test):
    at = _open(test_index="8")
    at.number_input(key="classify_test_index").set_value(1234).run()
    assert not at.exception
    assert at.query_params["test_index"] == "1234"
    assert _prediction_shown(at) == logit_effects(bundled("mlp-1x64"), mnist_test.images[1234]).prediction


def test_unknown_model_falls_back_and_the_page_still_works():
    at = _open(model="no-such-model", test_index="3")
    assert not at.exception
    assert any("Unknown `model`" in w.value for w in at.warning)
    assert at.query_params["model"] == "mlp-1x64" and at.query_params["test_index"] == "3"


@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_every_bundled_model_renders(name, bundled, mnist_test):
    at = _open(model=name, test_index="0")
    assert not at.exception
    model = bundled(name)
    expected = logit_effects(model, mnist_test.images[0])
    assert _prediction_shown(at) == expected.prediction
    effects = next(spec for title, spec in _figures(at).items() if title.startswith("Logit effects"))
    assert _array(effects["data"][0]["z"]).shape == expected.effects.shape
    earlier = model.layer_names[:-2]
    tabs = list(CLASSIFY_TABS)  # every model has every tab (some say they do not apply), so links' tabs exist
    assert [tab.label for tab in at.tabs] == [tab.label for tab in tabs]
    # The bundled dictionaries: mlp-1x64's layers.0 and challenge-cnn's fc1 (the layers feeding the logits).
    latent_charts = {"classify_latent_effects"} if name in ("mlp-1x64", "challenge-cnn") else set()
    attribution = {f"classify_attr_{layer}" for layer in earlier} | \
        {f"classify_attr_cells_{layer}" for layer in earlier if model.layout[layer].is_conv}  # heatmap (+ cells)
    # Each tab shows its own charts and no other tab's: input, logits, probabilities, then effects and weights;
    # units and combined; activations; or the earlier layers' attribution.
    for tab in tabs:
        charts = at.get("plotly_chart") if tab == EFFECTS else _open_tab(at, tab).get("plotly_chart")
        assert len(charts) == len({c.key for c in charts}) and \
            {c.key for c in charts} == ALWAYS_CHARTS | (latent_charts if tab == LATENTS else
                                                          TAB_CHARTS.get(tab, attribution)), tab
        if tab == EARLIER and not earlier:
            assert any("its attribution is the logit effects" in i.value for i in at.info)
        if tab == IMPORTANT:
            shown = at.dataframe[0].value["unit"].tolist()
            assert shown == [u.unit for u in
                             explain_class(model, mnist_test.images[0], expected, expected.prediction).units]


def test_a_final_layer_reading_feature_maps_says_what_does_not_apply(mnist_test):
    """A CNN with no hidden FC layer: its final layer reads flattened pooled maps, which are not neurons."""
    torch.manual_seed(0)
    model = build_model(cnn_config(conv_channels=(2,), kernel_sizes=(3,), fc_sizes=()))
    model.card = ModelCard(name="maps-only@00000000", config=model.config, weights_sha256="")
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["private_models"] = {"maps-only@00000000": model}
    at.run()
    at.switch_page(PAGE)
    at.query_params["model"] = "maps-only@00000000"
    at.query_params["test_index"] = "3"
    at.query_params[CLASSIFY_PANEL_PARAM] = IMPORTANT.slug
    at.run()
    at.slider(key="classify_share_percent").set_value(0.5).run()
    assert not at.exception
    assert _prediction_shown(at) == logit_effects(model, mnist_test.images[3]).prediction
    assert [tab.label for tab in at.tabs] == [tab.label for tab in CLASSIFY_TABS]
    assert any("do not apply" in i.value and "no Hadamard embedding" in i.value for i in at.info)
    assert "Neuron Explorer" not in at.dataframe[0].value.columns, "no links to neurons that are not neurons"
    _open_tab(at, EFFECTS)
    at.session_state["classify_effects"] = {"selection": {"points": [{"x": 5, "y": 0}]}}
    at.run()
    assert any("not neurons" in i.value for i in at.info)


def test_the_example_survives_a_detour_through_the_canvas():
    at = _open(test_index="42")
    at.radio(key="classify_source").set_value("Drawing").run()
    assert "test_index" not in at.query_params
    at.radio(key="classify_source").set_value("Test example").run()
    assert not at.exception
    assert at.number_input(key="classify_test_index").value == 42 and at.query_params["test_index"] == "42"


def test_pick_by_digit():
    at = _open()
    at.radio(key="classify_pick_by").set_value("Digit").run()
    at.selectbox(key="classify_digit").set_value(3).run()
    assert not at.exception
    first_three = int(indices_of_digit("test", 3)[0])
    assert at.query_params["test_index"] == str(first_three)
    assert any(f"test image #{first_three}: MNIST digit **3**" in m.value for m in at.markdown)


def test_changing_digit_after_picking_an_example_of_another():
    at = _open()
    at.radio(key="classify_pick_by").set_value("Digit").run()
    at.selectbox(key="classify_digit").set_value(3).run()
    second_three = int(indices_of_digit("test", 3)[1])
    at.selectbox(key="classify_digit_example").set_value(second_three).run()
    assert at.query_params["test_index"] == str(second_three)
    at.selectbox(key="classify_digit").set_value(5).run()
    assert not at.exception
    assert at.query_params["test_index"] == str(int(indices_of_digit("test", 5)[0]))


def test_switching_to_a_model_with_fewer_classes_keeps_working():
    at = _open(test_index="8")
    at.selectbox(key="classify_class").set_value(7).run()
    at.selectbox(key="model").set_value("challenge-cnn").run()
    assert not at.exception
    options = at.selectbox(key="classify_class").options
    assert options == [f"the prediction ({_prediction_shown(at)})", "class 0", "class 1"]
    assert at.session_state["classify_test_index"] == 8 and at.query_params["model"] == "challenge-cnn"


def test_pick_a_misclassified_example(bundled):
    at = _open()
    at.radio(key="classify_pick_by").set_value("Misclassified").run()
    assert not at.exception
    wrong = misclassified(split_predictions(bundled("mlp-1x64"), "test"))
    picker = at.selectbox(key="classify_mistake")
    assert picker.options[0].startswith(f"test #{wrong[0]}:") and len(picker.options) == len(wrong)
    picker.set_value(int(wrong[3])).run()
    assert at.query_params["test_index"] == str(wrong[3])
    assert any("✗ misclassified" in m.value for m in at.markdown)


def test_a_secret_labelling_function_keeps_its_mistakes_hidden_until_asked():
    at = _open(model="challenge-cnn")
    at.radio(key="classify_pick_by").set_value("Misclassified").run()
    assert not at.exception
    assert not [s for s in at.selectbox if s.key == "classify_mistake"]
    assert any("Tick the box" in i.value for i in at.info)
    at.checkbox(key="classify_reveal_labels").check().run()
    assert at.selectbox(key="classify_mistake").options


def test_a_drawing_is_preprocessed_and_classified(bundled, mnist_test):
    at = _open(test_index="5")
    at.radio(key="classify_source").set_value("Drawing").run()
    assert any("Nothing drawn yet" in i.value for i in at.info), "a blank canvas says so"
    assert "test_index" not in at.query_params, "a drawing has no deep link"
    canvas = render_on_canvas(mnist_test.images[0], np.random.default_rng(0))
    at.session_state["classify_canvas_0"] = _canvas_drawing(canvas)
    at.run()
    assert not at.exception
    processed = preprocess_drawing(canvas).image
    assert _prediction_shown(at) == logit_effects(bundled("mlp-1x64"), processed).prediction
    shown = _array(_figures(at)["Model input"]["data"][0]["z"])
    np.testing.assert_allclose(shown, processed / 255.0, atol=1e-9)
    links = _open_tab(at, IMPORTANT).dataframe[0].value["Neuron Explorer"]
    assert _prediction_shown(at) == logit_effects(bundled("mlp-1x64"), processed).prediction, "still the drawing"
    assert len(links) and not links.str.contains("test_index=|train_index=|view=").any(), \
        "a drawing has no index: a unit opens on its own top example, on the Neuron Explorer's first tab"


def test_a_black_canvas_is_nothing_drawn():
    at = _open()
    at.radio(key="classify_source").set_value("Drawing").run()
    black = np.zeros((280, 280, 4), np.uint8)
    black[..., 3] = 255
    at.session_state["classify_canvas_0"] = _canvas_drawing(black)
    at.run()
    assert not at.exception
    assert any("Nothing drawn yet" in i.value for i in at.info)


def test_clear_starts_a_fresh_canvas(mnist_test):
    at = _open()
    at.radio(key="classify_source").set_value("Drawing").run()
    at.session_state["classify_canvas_0"] = _canvas_drawing(
        render_on_canvas(mnist_test.images[1], np.random.default_rng(1)))
    at.run()
    assert not at.info
    at.button(key="classify_canvas_clear").click().run()
    assert not at.exception
    assert at.session_state["classify_canvas_generation"] == 1
    assert any("Nothing drawn yet" in i.value for i in at.info)


def test_class_and_share_choose_the_important_units(bundled, mnist_test):
    at = _open(test_index="8", **{CLASSIFY_PANEL_PARAM: IMPORTANT.slug})
    at.selectbox(key="classify_class").set_value(3).run()
    at.slider(key="classify_share_percent").set_value(5.0).run()
    assert not at.exception
    assert any(m.value == "#### Important units for class 3" for m in at.markdown)
    model = bundled("mlp-1x64")
    expected = explain_class(model, mnist_test.images[8], logit_effects(model, mnist_test.images[8]), 3, 0.05)
    table = at.dataframe[0].value
    assert table["unit"].tolist() == [u.unit for u in expected.units]
    np.testing.assert_allclose(table["effect"], [u.effect for u in expected.units])
    first = expected.units[0].unit
    assert table["Neuron Explorer"].iloc[0] == \
        f"./neuron?model=mlp-1x64&layer=layers.0&unit={first}&test_index=8&view=input", "on this same input"


def test_earlier_layers_are_attributed_with_their_checks(bundled, mnist_test):
    model = bundled("mlp-2x64")
    at = _open(model="mlp-2x64", test_index="3", **{CLASSIFY_PANEL_PARAM: EARLIER.slug})
    assert not at.exception
    expected = layer_attribution(model, mnist_test.images[3], "layers.0")
    heatmap = next(c for c in at.get("plotly_chart") if c.key == "classify_attr_layers.0")
    z = _array(json.loads(heatmap.proto.spec)["data"][0]["z"])
    np.testing.assert_allclose(z.reshape(expected.per_unit[0].shape), expected.per_unit[0], rtol=1e-5, atol=1e-6)
    checks = next(df.value for df in at.dataframe if "gap" in df.value.columns)
    np.testing.assert_allclose(checks["gap"], expected.completeness_gap[0], atol=1e-4)
    np.testing.assert_allclose(checks["logit with layers.0 off"], expected.baseline_logits[0], rtol=1e-5)
    check = next(c.value for c in at.caption if c.value.startswith("Check:"))
    assert ("need not add up" in check) == (not expected.same_piece[0])
    at.session_state["classify_attr_layers.0"] = {"selection": {"points": [{"x": 7, "y": 2}]}}
    at.run()
    assert not at.exception and not at.warning
    assert {"model": "mlp-2x64", "layer": "layers.0", "unit": "7", "test_index": "3"}.items() <= \
        dict(at.query_params).items()


def test_a_cnn_conv_layer_is_attributed_per_channel_and_per_cell(bundled, mnist_test):
    model = bundled("challenge-cnn")
    at = _open(model="challenge-cnn", test_index="5", **{CLASSIFY_PANEL_PARAM: EARLIER.slug})
    assert not at.exception
    expected = layer_attribution(model, mnist_test.images[5], "conv2")
    cls = logit_effects(model, mnist_test.images[5]).prediction
    cells = next(df.value for df in at.dataframe if "pooled cell" in df.value.columns and
                 df.value["open"].str.contains("layer=conv2").all())
    flat = np.argsort(-np.abs(expected.attributions[0, cls].ravel()), kind="stable")[:12]
    channel, row, col = np.unravel_index(flat, expected.attributions.shape[2:])
    np.testing.assert_allclose(cells["attribution"], expected.attributions[0, cls][channel, row, col], rtol=1e-5)
    where = pooled_cell_positions(model, "conv2", mnist_test.images[5])[channel[0], row[0], col[0]]
    assert cells["open"].iloc[0] == (f"./neuron?model=challenge-cnn&layer=conv2&unit={channel[0]}"
                                     f"&pos={where[0]}%2C{where[1]}&test_index=5&view=input")


def test_clicking_the_bias_column_explains_itself():
    at = _open(test_index="8")
    at.session_state["classify_effects"] = {"selection": {"points": [{"x": 64, "y": 2}]}}
    at.run()
    assert not at.exception
    assert any("bias column" in i.value for i in at.info)


def test_clicking_a_cell_opens_the_neuron_explorer():
    """The URL contract: /neuron?model=M&layer=L&unit=U (needs the Neuron Explorer page in the app)."""
    at = _open(test_index="8")
    at.session_state["classify_effects"] = {"selection": {"points": [{"x": 5, "y": 3}]}}
    at.run()
    assert not at.exception
    assert not at.warning, [w.value for w in at.warning]
    assert {"model": "mlp-1x64", "layer": "layers.0", "unit": "5"}.items() <= dict(at.query_params).items()


def test_selecting_an_important_unit_opens_the_neuron_explorer():
    at = _open(test_index="8", **{CLASSIFY_PANEL_PARAM: IMPORTANT.slug})
    first = int(at.dataframe[0].value["unit"].iloc[0])
    at.session_state["classify_important_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert not at.exception
    assert not at.warning, [w.value for w in at.warning]
    assert at.query_params["layer"] == "layers.0" and at.query_params["unit"] == str(first)
    assert at.query_params["test_index"] == "8" and at.query_params[NEURON_VIEW_PARAM] == ON_INPUT.slug


def test_only_the_open_tab_is_computed_and_a_click_through_opens_the_unit_on_this_input(monkeypatch):
    """Each tab's figures and analyses run only while it is open (mlp-2x64: with an earlier layer's tab);
    a unit clicked in the logit effects opens on the Neuron Explorer's "On one input" tab, on this test image."""
    calls: dict[str, int] = {}

    def counted(module, name):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    counted(classification_viz, "logit_effects_heatmap")
    counted(classification_viz, "activations_figure")
    counted(classification_viz, "combined_embeddings_figure")
    counted(attribution_panels, "layer_attribution")

    at = _open(model="mlp-2x64", test_index="8")
    assert not at.exception
    assert at.session_state[CLASSIFY_PANEL_PARAM] == EFFECTS.label
    charts = _chart_keys(at)
    assert "classify_effects" in charts and "classify_activations" not in charts
    assert calls.get("logit_effects_heatmap", 0) >= 1
    assert not {"activations_figure", "combined_embeddings_figure", "layer_attribution"} & calls.keys()

    calls.clear()
    _open_tab(at, ACTIVATIONS)
    charts = _chart_keys(at)
    assert "classify_activations" in charts and "classify_effects" not in charts
    assert calls.get("activations_figure", 0) >= 1
    assert not {"logit_effects_heatmap", "combined_embeddings_figure", "layer_attribution"} & calls.keys()

    _open_tab(at, EFFECTS)
    at.session_state["classify_effects"] = {"selection": {"points": [{"x": 5, "y": 3}]}}
    at.run()
    assert not at.exception
    assert not at.warning, [w.value for w in at.warning]
    assert {"model": "mlp-2x64", "layer": "layers.1", "unit": "5", "test_index": "8",
            NEURON_VIEW_PARAM: ON_INPUT.slug}.items() <= dict(at.query_params).items()
    assert at.header[0].value == "layers.1 · neuron 5"
    charts = _chart_keys(at)
    assert {"nx_fig_input", "nx_fig_embedding"} <= charts, "the Neuron Explorer opened on this input's tab"
    assert "nx_fig_hist" not in charts


# --------------------------------------------------------------------------- in a real browser
def _canvas_pixels(page) -> np.ndarray:
    """The drawing canvas as the component sends it (RGBA ``[280, 280, 4]``, white ink on black), read in the
    browser."""
    url = page.locator("canvas.dc-canvas.lower-canvas").evaluate("canvas => canvas.toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA"))


def _stroke(page, points: list[tuple[float, float]]) -> np.ndarray:
    """One pen stroke through ``points`` (canvas pixels), as a user's mouse draws it; returns the
    canvas's pixels once the stroke is on it.

    A stroke made while the canvas is still mounting (a loaded machine) never reaches it, as it
    would not for a user; so the stroke is drawn again, up to three times, until the canvas shows it.
    """
    canvas = page.locator("canvas.upper-canvas")
    canvas.wait_for(state="visible", timeout=60_000)
    before = _canvas_pixels(page)
    for _ in range(3):
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=6)
        page.mouse.up()
        for _ in range(20):
            after = _canvas_pixels(page)
            if not np.array_equal(after, before):
                return after
            page.wait_for_timeout(250)
    raise AssertionError(f"the canvas never showed the stroke through {points}")


def _expect_prediction(page, model, image: np.ndarray) -> int:
    predicted = logit_effects(model, image).prediction
    page.get_by_text(f"Predicted class {predicted}", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)
    return predicted


@pytest.mark.browser
def test_browser_deep_link_shows_the_example(page, app_url, bundled, mnist_test):
    page.goto(f"{app_url}/classify?model=mlp-1x64&test_index=8")
    wait_for_app(page)
    assert_no_exception(page)
    _expect_prediction(page, bundled("mlp-1x64"), mnist_test.images[8])
    assert "test_index=8" in page.url
    page.locator(".st-key-classify_effects .nsewdrag").wait_for(timeout=60_000)  # the heatmap is drawn


@pytest.mark.browser
def test_browser_drawing_updates_the_prediction(page, app_url, bundled):
    model = bundled("mlp-1x64")
    page.goto(f"{app_url}/classify?model=mlp-1x64&test_index=8")
    wait_for_app(page)
    page.get_by_text("Drawing", exact=True).click()
    page.get_by_text("Nothing drawn yet: draw a digit on the canvas.").wait_for(timeout=60_000)
    assert "test_index" not in page.url
    # After each stroke the page shows the model's prediction on what the canvas now holds.
    first = preprocess_drawing(_stroke(page, [(140, 40), (140, 240)])).image  # a "1"
    _expect_prediction(page, model, first)
    second = preprocess_drawing(_stroke(page, [(80, 50), (200, 50)])).image  # a bar across its top: a "7"
    assert not np.array_equal(first, second)
    _expect_prediction(page, model, second)
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("Nothing drawn yet: draw a digit on the canvas.").wait_for(timeout=60_000)


@pytest.mark.browser
def test_browser_picking_a_test_example(page, app_url, bundled, mnist_test):
    model = bundled("mlp-1x64")
    page.goto(f"{app_url}/classify?model=mlp-1x64&test_index=8")
    wait_for_app(page)
    field = page.locator(".st-key-classify_test_index input")
    field.fill("1234")
    field.press("Enter")
    page.wait_for_url("**test_index=1234**", timeout=60_000)
    _expect_prediction(page, model, mnist_test.images[1234])
    page.get_by_text("Digit", exact=True).click()
    first_three = int(indices_of_digit("test", 0)[0])
    page.wait_for_url(f"**test_index={first_three}**", timeout=60_000)
    _expect_prediction(page, model, mnist_test.images[first_three])


@pytest.mark.browser
def test_browser_downloads_carry_the_numbers_shown(page, app_url, bundled, mnist_test):
    page.goto(f"{app_url}/classify?model=mlp-1x64&test_index=8")
    wait_for_app(page)
    expected = logit_effects(bundled("mlp-1x64"), mnist_test.images[8])
    page.locator(".st-key-classify_effects .nsewdrag").wait_for(timeout=60_000)  # the first tab is drawn
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download logit effects").click()
    table = pd.read_csv(download.value.path())
    assert list(table.columns) == ["class", *map(str, range(64)), "bias", "logit"]
    np.testing.assert_allclose(table.drop(columns=["class", "logit"]).to_numpy(), expected.effects, rtol=1e-6)
    np.testing.assert_allclose(table["logit"], expected.logits, rtol=1e-6)
    page.get_by_role("tab", name=IMPORTANT.label).click()
    page.wait_for_url("**panel=important**", timeout=60_000)
    page.locator(".st-key-classify_combined .nsewdrag").wait_for(timeout=60_000)  # that tab is drawn
    wait_for_app(page)
    assert_no_exception(page)
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download combined embeddings").click()
    with np.load(download.value.path()) as saved:
        assert saved["all_map"].sum() + saved["all_bias"] + saved["output_bias"] == pytest.approx(
            float(saved["logit"]), abs=1e-4)


@pytest.mark.browser
def test_browser_clicking_a_logit_effect_opens_the_neuron(page, app_url):
    page.goto(f"{app_url}/classify?model=mlp-1x64&test_index=8")
    wait_for_app(page)
    chart = page.locator(".st-key-classify_effects")
    chart.scroll_into_view_if_needed()
    area = chart.locator("rect.nsewdrag").first
    area.wait_for(timeout=60_000)
    box = area.bounding_box()
    unit, cls, columns, rows = 5, 3, 65, 10
    page.mouse.click(box["x"] + (unit + 0.5) / columns * box["width"], box["y"] + (cls + 0.5) / rows * box["height"])
    page.wait_for_url("**/neuron?**", timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)
    query = dict(part.split("=", 1) for part in page.url.split("?", 1)[1].split("&"))
    assert {"model": "mlp-1x64", "layer": "layers.0", "unit": str(unit), "test_index": "8",
            "view": "input"}.items() <= query.items()
    assert page.get_by_role("heading", name="Neuron Explorer").first.is_visible()
    expect(page.get_by_role("tab", name=ON_INPUT.label)).to_have_attribute("aria-selected", "true")


@pytest.mark.browser
def test_browser_attribution_to_every_earlier_layer_of_a_cnn(page, app_url):
    """cnn-digits: a panel per earlier layer (conv1, conv2) with its check; a cell opens that channel on this input."""
    page.goto(f"{app_url}/classify?model=cnn-digits&test_index=3&panel=Earlier+layers")  # an old link: a label
    wait_for_app(page, timeout_ms=300_000)
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Attribution to earlier layers")).to_be_visible()
    for layer in ("conv1", "conv2"):
        chart = page.locator(f".st-key-classify_attr_{layer}")
        chart.scroll_into_view_if_needed()
        expect(chart).to_contain_text(f"{layer}: gradient × activation per channel", timeout=60_000)
    expect(page.get_by_text("Check: each class's attributions plus")).to_have_count(2)
    chart = page.locator(".st-key-classify_attr_conv2")
    area = chart.locator("rect.nsewdrag").first
    area.wait_for(timeout=60_000)
    box = area.bounding_box()
    channel, cls, columns, rows = 5, 0, 16, 10
    page.mouse.click(box["x"] + (channel + 0.5) / columns * box["width"], box["y"] + (cls + 0.5) / rows * box["height"])
    page.wait_for_url("**/neuron?**", timeout=60_000)
    page.locator("h2", has_text="conv2 · channel 5").first.wait_for(timeout=300_000)
    wait_for_app(page, timeout_ms=300_000)
    assert_no_exception(page)
    query = dict(part.split("=", 1) for part in page.url.split("?", 1)[1].split("&"))
    assert {"model": "cnn-digits", "layer": "conv2", "unit": "5", "test_index": "3"}.items() <= query.items()
