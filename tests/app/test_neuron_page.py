"""The Neuron Explorer page: deep links, navigation, bad parameters, first-time analysis; AppTest and a real browser."""

from __future__ import annotations

import base64
import io
import json
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect
from streamlit.testing.v1 import AppTest

from mechmnistic.analysis.activations import layer_activations
from mechmnistic.analysis.atlas import AtlasParameters, atlas_is_cached
from mechmnistic.analysis.connections import upstream_contributions
from mechmnistic.analysis.conv import feature_maps, pooled_cell_positions
from mechmnistic.analysis.embeddings import first_layer_effective_weights
from mechmnistic.analysis.unit_behaviour import similar_units, top_examples
from ui.links import CLUSTERS, NEURON_VIEW_PARAM, NEURON_VIEWS, ON_INPUT, READS, TOP_EXAMPLES
from ui.tabs import Tab

from . import tabs
from .conftest import assert_no_exception, wait_for_app
from .test_import_page import _loaded, _session, _upload, digit_mlp_bytes  # noqa: F401 (a fixture)

APP = "../../app.py"
PAGE = "app_pages/neuron_explorer.py"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """An empty analysis cache: the first page run in this module computes the atlas, as a new install would."""
    folder = tmp_path_factory.mktemp("neuron-page-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MECHMNISTIC_CACHE", str(folder))
        yield folder


def open_page(**params: str | Tab) -> AppTest:
    """The page on a deep link with ``params`` (a tab by its slug)."""
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page(PAGE)
    at.query_params.update({name: value.slug if isinstance(value, Tab) else value for name, value in params.items()})
    return at.run()


def open_tab(at: AppTest, view: Tab) -> AppTest:
    """Open the page's tab ``view`` and re-run, as a click on it does (only the open tab is computed and drawn)."""
    return tabs.open_tab(at, NEURON_VIEW_PARAM, view, READS)


def keys(elements) -> set[str]:
    return {element.key for element in elements}


def chart_keys(at: AppTest) -> set[str]:
    return keys(at.get("plotly_chart"))


def shown_unit(at: AppTest) -> str:
    return at.header[0].value


def warnings(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning)


def figure(at: AppTest, key: str) -> dict:
    chart = next(c for c in at.get("plotly_chart") if c.key == key)
    return json.loads(chart.proto.spec)


def decoded(value) -> np.ndarray:
    """A Plotly array as sent to the browser (a list, or base64 typed binary)."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value, dtype=float)


def test_first_visit_computes_the_atlas_then_a_deep_link_reproduces_the_view(cache_dir, bundled):
    model = bundled("mlp-1x64")
    assert not atlas_is_cached(model, "layers.0")
    at = open_page(model="mlp-1x64", layer="layers.0", unit="17")
    assert not at.exception
    assert atlas_is_cached(model, "layers.0"), "the first visit stored the atlas"
    assert shown_unit(at) == "layers.0 · neuron 17"
    assert at.number_input(key="nx_unit").value == 17
    assert at.query_params["unit"] == "17" and at.query_params["layer"] == "layers.0"
    assert NEURON_VIEW_PARAM not in at.query_params, "the first tab is the default: the URL need not name it"
    shown = decoded(figure(at, "nx_fig_in")["data"][0]["z"]).reshape(28, 28)
    np.testing.assert_allclose(shown, first_layer_effective_weights(model, np.array([17]))[0][0], rtol=1e-6)
    expected, _ = similar_units(model, "layers.0", 17)
    assert [at.button(key=f"nx_similar_{rank}").label.split(" ·")[0] for rank in range(5)] == \
        [f"neuron {u}" for u in expected]
    open_tab(at, TOP_EXAMPLES)
    assert not at.exception and at.query_params[NEURON_VIEW_PARAM] == TOP_EXAMPLES.slug
    gap = next(c.value for c in at.caption if "largest difference" in c.value)
    assert float(gap.rsplit(": ", 1)[1].rstrip(").")) < 1e-4, "embedding sums + bias = pre-activations, shown"
    open_tab(at, READS)
    at.button(key="nx_similar_0").click().run()
    assert shown_unit(at) == f"layers.0 · neuron {expected[0]}" and at.query_params["unit"] == str(expected[0])
    assert not at.warning


def test_next_and_previous_move_the_view_and_the_url(cache_dir):
    at = open_page(model="mlp-1x64", layer="layers.0", unit="62")
    at.button(key="nx_next").click().run()
    assert shown_unit(at) == "layers.0 · neuron 63" and at.query_params["unit"] == "63"
    assert at.button(key="nx_next").disabled, "cannot go past the last neuron"
    at.button(key="nx_prev").click().run()
    at.button(key="nx_prev").click().run()
    assert shown_unit(at) == "layers.0 · neuron 61" and at.query_params["unit"] == "61"
    at.number_input(key="nx_unit").set_value(0).run()
    assert at.query_params["unit"] == "0" and at.button(key="nx_prev").disabled
    assert not at.exception


def test_empty_parameters_mean_the_defaults(cache_dir):
    at = open_page(model="mlp-1x64", layer="", unit="")
    assert not at.exception and not at.warning
    assert shown_unit(at) == "layers.0 · neuron 0"
    assert at.query_params["unit"] == "0"


def test_cluster_controls_change_the_clusters_and_the_url(cache_dir, bundled):
    at = open_page(model="mlp-1x64", layer="layers.0", unit="4", top_k="60", clusters="4", view=CLUSTERS)
    assert not at.exception and not at.warning
    assert len(at.dataframe[0].value) == 4
    assert atlas_is_cached(bundled("mlp-1x64"), "layers.0", AtlasParameters(top_k=60, n_clusters=4))
    at.selectbox(key="nx_clusters").set_value("2").run()
    assert at.query_params["clusters"] == "2" and len(at.dataframe[0].value) == 2
    at.selectbox(key="nx_cluster").set_value("C1").run()
    assert at.query_params["cluster"] == "C1"
    at.button(key="nx_next").click().run()
    assert "cluster" not in at.query_params, "another neuron: the chosen cluster no longer applies"


# Each tab's charts for a first-layer MLP neuron: what a tab computes it draws, so these name what ran.
MLP_CHARTS = {
    READS: {"nx_fig_in", "nx_fig_out", "nx_fig_hist", "nx_fig_classes"},
    ON_INPUT: {"nx_fig_input", "nx_fig_weff", "nx_fig_embedding"},
    TOP_EXAMPLES: {"nx_fig_top"},
    CLUSTERS: {"nx_fig_clusters", "nx_fig_cluster_classes", "nx_fig_members"},
}


def test_only_the_open_tab_is_computed_and_its_name_stays_in_the_url(cache_dir):
    at = open_page(model="mlp-1x64", layer="layers.0", unit="5")
    assert [tab.label for tab in at.tabs] == [view.label for view in NEURON_VIEWS]
    assert NEURON_VIEW_PARAM not in at.query_params, "the first tab is the default: the URL need not name it"
    for view in NEURON_VIEWS:
        if view != READS:
            open_tab(at, view)
            assert at.query_params[NEURON_VIEW_PARAM] == view.slug
        assert not at.exception and not at.warning
        assert chart_keys(at) == MLP_CHARTS[view], view
        assert ("nx_similar_0" in keys(at.button)) == (view == READS)
        assert ("nx_index" in keys(at.number_input)) == (view == ON_INPUT)
        assert any("largest difference" in c.value for c in at.caption) == (view == TOP_EXAMPLES)
        assert ("nx_cluster" in keys(at.selectbox)) == (view == CLUSTERS)
        assert len(at.dataframe) == (1 if view == CLUSTERS else 0), "the clusters' table only"
    at.button(key="nx_next").click().run()
    assert shown_unit(at) == "layers.0 · neuron 6" and at.query_params["unit"] == "6"
    assert at.query_params[NEURON_VIEW_PARAM] == CLUSTERS.slug and chart_keys(at) == MLP_CHARTS[CLUSTERS], \
        "another unit, the same tab"


def test_the_first_two_tabs_never_ground_the_top_examples(cache_dir, monkeypatch):
    """Their header's cluster count is the atlas's: grounding and clustering 500 examples on every switch is
    left to the tabs that show them, whose count it equals."""
    import ui.neuron_data

    real = ui.neuron_data.unit_view
    monkeypatch.setattr(ui.neuron_data, "unit_view", lambda *a, **k: pytest.fail("grounded the top examples"))
    at = open_page(model="mlp-1x64", layer="layers.0", unit="5")
    for view in (READS, ON_INPUT):
        if view != READS:
            open_tab(at, view)
        assert not at.exception, at.exception
    count = int(next(m.value for m in at.metric if m.label == "Feature clusters"))
    monkeypatch.setattr(ui.neuron_data, "unit_view", real)
    open_tab(at, CLUSTERS)
    assert not at.exception and len(at.dataframe[0].value) == count


def test_links_made_before_slugs_and_the_unit_parameter_still_open_their_view(cache_dir):
    """``neuron=`` was the unit's parameter and tabs were named by their labels: such links still work, and the
    address bar is rewritten to today's names."""
    at = open_page(model="mlp-1x64", layer="layers.0", neuron="7", view=TOP_EXAMPLES.label)
    assert not at.exception and not at.warning
    assert shown_unit(at) == "layers.0 · neuron 7" and chart_keys(at) == MLP_CHARTS[TOP_EXAMPLES]
    assert at.query_params["unit"] == "7" and "neuron" not in at.query_params
    assert at.query_params[NEURON_VIEW_PARAM] == TOP_EXAMPLES.slug
    at = open_page(model="mlp-1x64", layer="layers.0", neuron="7", unit="8")
    assert shown_unit(at) == "layers.0 · neuron 8", "the new name wins over the old"


def test_an_unknown_tab_opens_the_first_and_leaves_the_url(cache_dir):
    at = open_page(model="mlp-1x64", layer="layers.0", unit="5", view="<no such tab>")
    assert not at.exception and chart_keys(at) == MLP_CHARTS[READS]
    assert NEURON_VIEW_PARAM not in at.query_params
    assert "Unknown `view` '<no such tab>'" in warnings(at)


def test_a_bad_cluster_is_reported_on_any_tab_and_said_once(cache_dir):
    at = open_page(model="mlp-1x64", layer="layers.0", unit="5", cluster="C99")
    assert not at.exception and "Unknown `cluster` 'C99'" in warnings(at)
    assert "cluster" not in at.query_params
    assert not at.run().warning


def caption_with(at: AppTest, text: str) -> str:
    return next(c.value for c in at.caption if text in c.value)


def test_a_cnn_opens_on_its_first_conv_channel(cache_dir):
    at = open_page(model="cnn-digits")
    assert not at.exception and not at.warning
    assert at.selectbox(key="nx_layer").options == ["conv1", "conv2", "fc1"]
    assert shown_unit(at) == "conv1 · channel 0" and at.radio(key="nx_at").value == "its maximum"


def test_a_conv_channel_by_deep_link(cache_dir, bundled, mnist_test):
    """Filters, the feature map on the shown input, top examples with where the channel fired."""
    model = bundled("cnn-digits")
    at = open_page(model="cnn-digits", layer="conv2", unit="6", top_k="60")
    assert not at.exception and not at.warning
    assert shown_unit(at) == "conv2 · channel 6"
    kernels = decoded(figure(at, "nx_fig_filters")["data"][0]["z"])
    weights = model.get_submodule("conv2").weight.detach().numpy()[6]  # [8, 3, 3]
    np.testing.assert_allclose(np.sort(kernels[~np.isnan(kernels)]), np.sort(weights.ravel()), rtol=1e-6)
    # With no input in the URL, the page shows the channel's top test example, and its map there.
    open_tab(at, ON_INPUT)
    assert not at.exception and not at.warning
    test_max = layer_activations(model, "conv2", "test").pre[:, 6]
    index = int(np.argmax(test_max))
    assert at.number_input(key="nx_index").value == index and at.radio(key="nx_split").value == "test"
    pre_map = feature_maps(model, "conv2", mnist_test.images[index], stage="pre")[6]
    shown_map = figure(at, "nx_fig_map_conv2_6")
    np.testing.assert_allclose(decoded(shown_map["data"][0]["z"]).reshape(11, 11), pre_map, rtol=1e-5)
    row, col = np.unravel_index(np.argmax(pre_map), pre_map.shape)
    (box,) = shown_map["layout"]["shapes"]
    assert (box["x0"] + 0.5, box["y0"] + 0.5) == (col, row), "the cell where the unit is taken is outlined"
    assert "Which conv1 units built this" in " ".join(m.value for m in at.markdown)
    # Top examples: one receptive-field box per tile, digits and embeddings alike.
    open_tab(at, TOP_EXAMPLES)
    assert not at.exception and not at.warning
    top = figure(at, "nx_fig_top")
    assert len(top["layout"]["shapes"]) == 2 * 16
    assert float(caption_with(at, "largest difference over the").rsplit(": ", 1)[1].split(")")[0]) < 1e-4
    open_tab(at, CLUSTERS)
    assert not at.exception and not at.warning
    assert "8x8-pixel receptive field" in caption_with(at, "grouped by the direction")


def test_a_channel_at_a_position(cache_dir, bundled):
    at = open_page(model="cnn-digits", layer="conv1", unit="3", pos="12,9", top_k="60", test_index="4",
                   view=ON_INPUT)
    assert not at.exception and not at.warning
    assert shown_unit(at) == "conv1 · channel 3 at (12, 9)"
    assert at.radio(key="nx_at").value == "one position"
    assert (at.number_input(key="nx_row").value, at.number_input(key="nx_col").value) == (12, 9)
    assert "(12, 9) of its map" in caption_with(at, "Embedding sum")
    # Back to the channel's maximum: the position leaves the URL.
    at.radio(key="nx_at").set_value("its maximum").run()
    assert "pos" not in at.query_params and shown_unit(at) == "conv1 · channel 3"
    # A click on the feature map takes the channel at that cell, on the same input.
    at.session_state["nx_fig_map_conv1_3"] = {"selection": {"points": [{"x": 7, "y": 20}]}}
    at.run()
    assert not at.exception
    assert at.query_params["pos"] == "20,7" and at.query_params["test_index"] == "4"
    assert shown_unit(at) == "conv1 · channel 3 at (20, 7)"


def test_an_upstream_bar_opens_that_unit_on_the_same_input(cache_dir, bundled, mnist_test):
    """mlp-2x64 layers.1: a click on an input-weight bar opens the layers.0 unit behind it."""
    at = open_page(model="mlp-2x64", layer="layers.1", unit="12", test_index="0")
    weights = bundled("mlp-2x64").get_submodule("layers.1").weight.detach().numpy()[12]
    bars = figure(at, "nx_in_bars_layers-1_12")["data"][0]
    strongest = np.argsort(-np.abs(weights), kind="stable")[:20]
    assert bars["y"] == [f"layers.0 #{u}" for u in strongest]
    at.session_state["nx_in_bars_layers-1_12"] = {"selection": {"points": [{"customdata": int(strongest[2])}]}}
    at.run()
    assert not at.exception
    assert shown_unit(at) == f"layers.0 · neuron {strongest[2]}" and at.query_params["test_index"] == "0"


def test_which_upstream_units_built_it_adds_up_and_links_on(cache_dir, bundled, mnist_test):
    at = open_page(model="mlp-2x64", layer="layers.1", unit="12", test_index="3", view=ON_INPUT)
    parts = upstream_contributions(bundled("mlp-2x64"), "layers.1", 12, mnist_test.images[3])
    table = next(df.value for df in at.dataframe if "activation × weight" in df.value.columns)
    order = parts.order()[:20]
    np.testing.assert_allclose(table["activation × weight"], parts.contributions[order], rtol=1e-5)
    assert table["open"].iloc[0] == (f"./neuron?model=mlp-2x64&layer=layers.0&unit={order[0]}"
                                     "&test_index=3&view=input")
    assert float(caption_with(at, "All parts sum to").rsplit("difference ", 1)[1].rstrip(").")) < 1e-4
    at.session_state["nx_upstream_layers-1_12"] = {"selection": {"rows": [1], "columns": []}}
    at.run()
    assert not at.exception
    assert shown_unit(at) == f"layers.0 · neuron {order[1]}" and at.query_params["test_index"] == "3"


def test_a_cnn_fc_unit_opens_conv_channels_where_they_fed_it(cache_dir, bundled, mnist_test):
    """challenge-cnn fc1 reads conv2's pooled cells: a bar opens conv2's channel at the map position where
    that cell took its maximum on the shown input; outgoing bars open fc2's units... which are the logits."""
    model = bundled("challenge-cnn")
    at = open_page(model="challenge-cnn", layer="fc1", unit="17", test_index="5", top_k="60")
    assert not at.exception and not at.warning
    weights = model.get_submodule("fc1").weight.detach().numpy()[17]
    strongest = int(np.argmax(np.abs(weights)))
    channel, row, col = np.unravel_index(strongest, (16, 5, 5))
    at.session_state["nx_in_bars_fc1_17"] = {"selection": {"points": [{"customdata": strongest}]}}
    at.run()
    assert not at.exception
    where = pooled_cell_positions(model, "conv2", mnist_test.images[5])[channel, row, col]
    assert shown_unit(at) == f"conv2 · channel {channel} at ({where[0]}, {where[1]})"
    assert at.query_params["test_index"] == "5"


def test_the_shown_input_is_pinned_by_the_url_and_released_by_its_button(cache_dir, bundled):
    test_pre = layer_activations(bundled("mlp-2x64"), "layers.1", "test").pre
    at = open_page(model="mlp-2x64", layer="layers.1", unit="2", view=ON_INPUT)
    assert at.number_input(key="nx_index").value == int(np.argmax(test_pre[:, 2])), "the unit's top test example"
    assert "test_index" not in at.query_params and at.button(key="nx_follow").disabled
    at.number_input(key="nx_index").set_value(41).run()
    assert at.query_params["test_index"] == "41" and "test #41" in figure(at, "nx_fig_input")["layout"]["title"]["text"]
    at.radio(key="nx_split").set_value("train").run()
    assert at.query_params["train_index"] == "41" and "test_index" not in at.query_params
    at.button(key="nx_next").click().run()
    assert shown_unit(at) == "layers.1 · neuron 3" and at.query_params["train_index"] == "41", "the input stays"
    at.button(key="nx_follow").click().run()
    assert "train_index" not in at.query_params and at.radio(key="nx_split").value == "test"
    assert at.number_input(key="nx_index").value == int(np.argmax(test_pre[:, 3]))


@pytest.mark.parametrize(("name", "layer"), [
    ("mlp-1x64", "layers.0"), ("mlp-2x64", "layers.0"), ("mlp-2x64", "layers.1"),
    ("cnn-digits", "conv1"), ("cnn-digits", "conv2"), ("cnn-digits", "fc1"),
    ("challenge-cnn", "conv1"), ("challenge-cnn", "conv2"), ("challenge-cnn", "fc1"),
])
def test_every_hidden_layer_of_every_bundled_model(cache_dir, name, layer):
    at = open_page(model=name, layer=layer, unit="1", top_k="60")
    for view in NEURON_VIEWS:  # each tab draws only its own sections: every one must run on every layer
        if view != READS:  # the first tab is open already
            open_tab(at, view)
        assert not at.exception and not at.warning, (view, [w.value for w in at.warning])
        assert shown_unit(at).startswith(f"{layer} · ")
        if view == TOP_EXAMPLES:
            assert float(caption_with(at, "largest difference over the").rsplit(": ", 1)[1].split(")")[0]) < 1e-4
        if view == ON_INPUT:
            assert float(caption_with(at, "Embedding sum").split("difference ")[1].split(")")[0]) < 1e-4


def test_mlp_2x64_first_layer(cache_dir):
    at = open_page(model="mlp-2x64", layer="layers.0", unit="63")
    assert not at.exception and shown_unit(at) == "layers.0 · neuron 63"


def test_a_deeper_layer_by_deep_link(cache_dir, bundled):
    at = open_page(model="mlp-2x64", layer="layers.1", unit="3")
    assert not at.exception and not at.warning
    assert at.selectbox(key="nx_layer").options == ["layers.0", "layers.1"]
    assert shown_unit(at) == "layers.1 · neuron 3"
    weights = bundled("mlp-2x64").get_submodule("layers.1").weight.detach().numpy()[3]
    bars = figure(at, "nx_in_bars_layers-1_3")["data"][0]  # one bar per unit of layers.0, largest |weight| first
    strongest = np.argsort(-np.abs(weights), kind="stable")[:20]
    np.testing.assert_allclose(decoded(bars["x"]), weights[strongest], rtol=1e-6)
    assert bars["y"] == [f"layers.0 #{u}" for u in strongest]
    at.radio(key="nx_order").set_value("by index").run()
    at.slider(key="nx_bars").set_value(60).run()
    bars = figure(at, "nx_in_bars_layers-1_3")["data"][0]
    np.testing.assert_allclose(decoded(bars["x"]), weights[:60], rtol=1e-6)
    open_tab(at, TOP_EXAMPLES)
    assert not at.exception and not at.warning
    gap = next(c.value for c in at.caption if "largest difference" in c.value)
    assert float(gap.rsplit(": ", 1)[1].rstrip(").")) < 1e-4, "embedding sums + effective bias = pre-activations"
    at.selectbox(key="nx_layer").set_value("layers.0").run()
    assert shown_unit(at) == "layers.0 · neuron 3" and at.query_params["layer"] == "layers.0"


def test_a_private_imported_model_is_explored_under_its_own_layer_names(cache_dir, digit_mlp_bytes):  # noqa: F811
    at = _loaded(_upload(_session(), "my_mlp.safetensors", digit_mlp_bytes))  # mlp-1x64 saved as fc1/fc2
    name = at.session_state["active_model"]
    at.switch_page(PAGE)
    at.query_params.update({"model": name, "layer": "fc1", "unit": "3"})
    at.run()
    assert not at.exception and not at.warning
    assert at.selectbox(key="nx_layer").options == ["fc1"]
    assert shown_unit(at) == "fc1 · neuron 3"


# ------------------------------------------------------------------------------------------ browser
def header_text(page) -> str:
    return page.locator("h2").first.inner_text()


def in_url(view: Tab) -> str:
    """The query parameter naming tab ``view``, as it reads in the address bar."""
    return urlencode({NEURON_VIEW_PARAM: view.slug})


def url_with(**params: str):
    """A test that a URL holds ``params`` in any order (seen rewritten in another order after a tab's
    parameter has come and gone)."""
    return lambda url: params.items() <= {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}.items()


def tab(page, view: Tab):
    return page.get_by_role("tab", name=view.label, exact=True)


def click_tab(page, view: Tab, chart_key: str) -> None:
    """Open tab ``view`` with a click and wait until its run has drawn ``chart_key``, one of its charts."""
    tab(page, view).click()
    page.locator(f".st-key-{chart_key}").wait_for(timeout=120_000)
    wait_for_app(page, timeout_ms=300_000)
    assert_no_exception(page)
    expect(tab(page, view)).to_have_attribute("aria-selected", "true")


@pytest.mark.browser
def test_deep_link_in_a_real_browser(page, app_url, bundled):
    page.goto(f"{app_url}/neuron?model=mlp-1x64&layer=layers.0&neuron=9")  # a link from before `unit`
    wait_for_app(page, timeout_ms=180_000)  # the server's cache starts empty: the atlas is computed first
    assert_no_exception(page)
    assert "layers.0 · neuron 9" in header_text(page)
    page.wait_for_url(url_with(unit="9"))  # the address bar now names it by today's parameter
    assert "neuron=9" not in page.url and "/neuron" in page.url
    bias = float(bundled("mlp-1x64").get_submodule("layers.0").bias[9])
    assert page.get_by_test_id("stMetric").filter(has_text="Bias").inner_text().endswith(f"{bias:.3g}")
    # Plotly's script loads lazily after the page's first run: charts mount a moment after the metrics.
    # Each tab draws only its own charts: the first 4, then 3, 1 and 3.
    charts = page.locator("[data-testid='stPlotlyChart']")
    expect(tab(page, READS)).to_have_attribute("aria-selected", "true")
    expect(charts).to_have_count(4, timeout=60_000)
    for view, chart_key, count in ((ON_INPUT, "nx_fig_input", 3), (TOP_EXAMPLES, "nx_fig_top", 1),
                                   (CLUSTERS, "nx_fig_clusters", 3)):
        click_tab(page, view, chart_key)
        expect(charts).to_have_count(count, timeout=60_000)
        assert in_url(view) in page.url and "unit=9" in page.url


@pytest.mark.browser
def test_next_and_previous_in_a_real_browser(page, app_url, bundled):
    model = bundled("mlp-1x64")
    page.goto(f"{app_url}/neuron?model=mlp-1x64&layer=layers.0&unit=20")
    wait_for_app(page, timeout_ms=180_000)
    page.get_by_role("button", name="Next ▶").click()
    page.wait_for_url("**unit=21**")
    wait_for_app(page)
    assert "layers.0 · neuron 21" in header_text(page)
    bias = float(model.get_submodule("layers.0").bias[21])
    assert page.get_by_test_id("stMetric").filter(has_text="Bias").inner_text().endswith(f"{bias:.3g}")
    page.get_by_role("button", name="◀ Previous").click()
    page.wait_for_url("**unit=20**")
    page.get_by_role("button", name="◀ Previous").click()
    page.wait_for_url("**unit=19**")
    wait_for_app(page)
    assert "layers.0 · neuron 19" in header_text(page)
    assert_no_exception(page)
    # A similar neuron's button lands on that neuron, in the address bar too.
    first_similar = int(similar_units(model, "layers.0", 19)[0][0])
    page.get_by_role("button", name=f"neuron {first_similar} ·").click()
    page.wait_for_url(f"**unit={first_similar}**")
    wait_for_app(page)
    assert f"layers.0 · neuron {first_similar}" in header_text(page)


@pytest.mark.browser
def test_downloads_carry_the_numbers_shown(page, app_url, bundled):
    page.goto(f"{app_url}/neuron?model=mlp-1x64&layer=layers.0&unit=12&{in_url(TOP_EXAMPLES)}")
    wait_for_app(page, timeout_ms=180_000)
    # The embeddings are made when the button is clicked (a deferred download): allow a loaded machine time.
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Top 500 examples (CSV)").click()
    table = pd.read_csv(io.BytesIO(download.value.path().read_bytes()))
    expected = top_examples(bundled("mlp-1x64"), "layers.0", 12, k=500)
    assert list(table.columns) == ["rank", "train_index", "label", "pre_activation", "activation", "cluster"]
    np.testing.assert_array_equal(table["train_index"], expected.indices)
    np.testing.assert_allclose(table["pre_activation"], expected.pre, rtol=1e-6)
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Their embeddings (NPZ)").click()
    with np.load(io.BytesIO(download.value.path().read_bytes())) as arrays:
        np.testing.assert_allclose(arrays["embeddings"].sum(axis=(1, 2)) + arrays["bias"], arrays["pre_activation"],
                                   atol=1e-4)


def _click_cell(page, chart_key: str, row: int, col: int, rows: int, cols: int) -> None:
    """Click the centre of cell ``(row, col)`` of a clickable heatmap (its plot area spans the cells exactly)."""
    chart = page.locator(f".st-key-{chart_key}")
    chart.scroll_into_view_if_needed()
    area = chart.locator("rect.nsewdrag").first
    area.wait_for(timeout=60_000)
    box = area.bounding_box()
    page.mouse.click(box["x"] + (col + 0.5) / cols * box["width"], box["y"] + (row + 0.5) / rows * box["height"])


def wait_for_unit(page, name: str) -> None:
    """Wait until the page shows unit ``name`` and has finished: a click-through re-runs the page twice
    (the click writes the new address, then the new unit is drawn)."""
    page.locator("h2", has_text=name).first.wait_for(timeout=300_000)
    wait_for_app(page, timeout_ms=300_000)
    assert_no_exception(page)


def _click_bar(page, bar) -> None:
    """Click a Plotly bar where a user would: its centre (Plotly's drag layer lies over the bars' own paths)."""
    box = bar.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


@pytest.mark.browser
def test_browser_a_deep_mlp_unit_and_its_upstream_units(page, app_url, bundled):
    """A layers.1 unit by deep link: hidden-to-hidden views, then a click through to an upstream unit and back."""
    weights = bundled("mlp-2x64").get_submodule("layers.1").weight.detach().numpy()[12]
    strongest = np.argsort(-np.abs(weights), kind="stable")
    page.goto(f"{app_url}/neuron?model=mlp-2x64&layer=layers.1&unit=12&test_index=3")
    wait_for_app(page, timeout_ms=300_000)
    assert_no_exception(page)
    assert "layers.1 · neuron 12" in header_text(page)
    incoming = page.locator(".st-key-nx_in_bars_layers-1_12")
    expect(incoming).to_contain_text("Input weights from layers.0", timeout=60_000)  # drawn after the run ends
    expect(page.locator(".st-key-nx_fig_out")).to_contain_text("Output weights to each class", timeout=60_000)
    click_tab(page, ON_INPUT, "nx_fig_input")
    expect(page.get_by_text("Which layers.0 units built this")).to_be_visible()
    expect(page.locator(".st-key-nx_upstream_layers-1_12")).to_be_visible()
    click_tab(page, READS, "nx_in_bars_layers-1_12")
    expect(incoming).to_contain_text("Input weights from layers.0", timeout=60_000)
    incoming.scroll_into_view_if_needed()
    _click_bar(page, incoming.locator("g.point path").nth(2))  # the third strongest weight
    page.wait_for_url(url_with(layer="layers.0", unit=str(strongest[2])), timeout=60_000)
    wait_for_unit(page, f"layers.0 · neuron {strongest[2]}")
    assert "test_index=3" in page.url
    # Its weights to layers.1 are bars too: sorted by index, the one to neuron 12 leads back.
    page.get_by_text("by index", exact=True).click()
    outgoing = page.locator(f".st-key-nx_out_bars_layers-0_{strongest[2]}")
    by_index = [f"layers.1 neuron {u}" for u in range(20)]
    expect(outgoing.locator("g.ytick text")).to_have_text(by_index[::-1], timeout=60_000)  # the axis runs down
    outgoing.scroll_into_view_if_needed()
    _click_bar(page, outgoing.locator("g.point path").nth(12))  # bars in data order: the 13th is neuron 12
    page.wait_for_url(url_with(layer="layers.1", unit="12"), timeout=60_000)
    wait_for_unit(page, "layers.1 · neuron 12")


@pytest.mark.browser
def test_browser_a_cnn_channel_by_deep_link(page, app_url, mnist_test, bundled):
    """conv2 of cnn-digits: its filters, its feature map on the shown input, top examples with where it fired."""
    page.goto(f"{app_url}/neuron?model=cnn-digits&layer=conv2&unit=6")
    wait_for_app(page, timeout_ms=300_000)
    assert_no_exception(page)
    assert "conv2 · channel 6" in header_text(page)
    expect(page.locator(".st-key-nx_fig_filters")).to_contain_text("conv2 ch6: its kernel on each conv1 channel",
                                                                    timeout=60_000)
    click_tab(page, TOP_EXAMPLES, "nx_fig_top")
    top = page.locator(".st-key-nx_fig_top")
    top.scroll_into_view_if_needed()
    expect(top.locator("g.shapelayer path")).to_have_count(2 * 16, timeout=60_000)  # a box on each digit and embedding
    click_tab(page, ON_INPUT, "nx_fig_map_conv2_6")
    expect(page.locator(".st-key-nx_fig_map_conv2_6")).to_contain_text("ch6's map on it", timeout=60_000)
    # A cell of the feature map takes the channel at that position, on the same input.
    index = page.locator(".st-key-nx_index input").input_value()
    _click_cell(page, "nx_fig_map_conv2_6", 4, 7, 11, 11)
    page.wait_for_url("**pos=4%2C7**", timeout=60_000)
    wait_for_unit(page, "conv2 · channel 6 at (4, 7)")
    assert f"test_index={index}" in page.url and in_url(ON_INPUT) in page.url
    expect(tab(page, ON_INPUT)).to_have_attribute("aria-selected", "true")


@pytest.mark.browser
def test_browser_a_tab_by_deep_link_and_by_click(page, app_url):
    """The URL opens a tab, a click opens another and names it in the URL, and the tab stays for the next unit."""
    old_link = urlencode({NEURON_VIEW_PARAM: CLUSTERS.label})  # links from before slugs named tabs by label
    page.goto(f"{app_url}/neuron?model=mlp-1x64&layer=layers.0&unit=5&{old_link}")
    wait_for_app(page, timeout_ms=300_000)
    assert_no_exception(page)
    expect(tab(page, CLUSTERS)).to_have_attribute("aria-selected", "true")
    page.wait_for_url(f"**{in_url(CLUSTERS)}**")  # rewritten to the slug
    expect(tab(page, READS)).to_have_attribute("aria-selected", "false")
    expect(page.locator(".st-key-nx_fig_clusters")).to_contain_text("Each cluster", timeout=60_000)
    expect(page.locator(".st-key-nx_fig_cluster_classes")).to_contain_text("Digits in each cluster")
    expect(page.locator(".st-key-nx_fig_members")).to_contain_text("Members of C0")
    charts = page.locator("[data-testid='stPlotlyChart']")
    expect(charts).to_have_count(3)
    click_tab(page, TOP_EXAMPLES, "nx_fig_top")
    expect(page.locator(".st-key-nx_fig_top")).to_contain_text("Top examples (label · activation)", timeout=60_000)
    expect(charts).to_have_count(1)
    expect(tab(page, CLUSTERS)).to_have_attribute("aria-selected", "false")
    page.wait_for_url(f"**{in_url(TOP_EXAMPLES)}**")
    assert "unit=5" in page.url
    page.get_by_role("button", name="Next ▶").click()
    page.wait_for_url("**unit=6**")
    wait_for_unit(page, "layers.0 · neuron 6")
    assert in_url(TOP_EXAMPLES) in page.url
    expect(tab(page, TOP_EXAMPLES)).to_have_attribute("aria-selected", "true")
    expect(page.locator(".st-key-nx_fig_top")).to_contain_text("Top examples (label · activation)", timeout=60_000)
