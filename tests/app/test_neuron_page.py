"""The Neuron Explorer page: deep links, navigation, bad parameters, first-time analysis; AppTest and a real browser."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect
from streamlit.testing.v1 import AppTest

from mechmnistic.analysis.atlas import AtlasParameters, atlas_is_cached
from mechmnistic.analysis.neurons import input_weights, similar_neurons, top_examples

from .conftest import assert_no_exception, wait_for_app
from .test_import_page import _session, _upload, digit_mlp_bytes  # noqa: F401 (a fixture)

APP = "../../app.py"
PAGE = "app_pages/neuron_explorer.py"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """An empty analysis cache: the first page run in this module computes the atlas, as a new install would."""
    folder = tmp_path_factory.mktemp("neuron-page-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MECHMNISTIC_CACHE", str(folder))
        yield folder


def open_page(**params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page(PAGE)
    at.query_params.update(params)
    return at.run()


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
    at = open_page(model="mlp-1x64", layer="layers.0", neuron="17")
    assert not at.exception
    assert atlas_is_cached(model, "layers.0"), "the first visit stored the atlas"
    assert shown_unit(at) == "layers.0 · neuron 17"
    assert at.number_input(key="nx_neuron").value == 17
    assert at.query_params["neuron"] == "17" and at.query_params["layer"] == "layers.0"
    gap = next(c.value for c in at.caption if "largest difference" in c.value)
    assert float(gap.rsplit(": ", 1)[1].rstrip(").")) < 1e-4, "embedding sums + bias = pre-activations, shown"
    shown = decoded(figure(at, "nx_fig_in")["data"][0]["z"]).reshape(28, 28)
    np.testing.assert_allclose(shown, input_weights(model, "layers.0", 17).weights, rtol=1e-6)
    expected, _ = similar_neurons(model, "layers.0", 17)
    assert [at.button(key=f"nx_similar_{rank}").label.split(" ·")[0] for rank in range(5)] == \
        [f"neuron {u}" for u in expected]
    at.button(key="nx_similar_0").click().run()
    assert shown_unit(at) == f"layers.0 · neuron {expected[0]}" and at.query_params["neuron"] == str(expected[0])
    assert not at.warning


def test_next_and_previous_move_the_view_and_the_url(cache_dir):
    at = open_page(model="mlp-1x64", layer="layers.0", neuron="62")
    at.button(key="nx_next").click().run()
    assert shown_unit(at) == "layers.0 · neuron 63" and at.query_params["neuron"] == "63"
    assert at.button(key="nx_next").disabled, "cannot go past the last neuron"
    at.button(key="nx_prev").click().run()
    at.button(key="nx_prev").click().run()
    assert shown_unit(at) == "layers.0 · neuron 61" and at.query_params["neuron"] == "61"
    at.number_input(key="nx_neuron").set_value(0).run()
    assert at.query_params["neuron"] == "0" and at.button(key="nx_prev").disabled
    assert not at.exception


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"neuron": "abc"}, "must be a whole number"),
        ({"neuron": "-1"}, "out of range"),
        ({"neuron": "64"}, "out of range"),
        ({"neuron": "1.5"}, "must be a whole number"),
        ({"neuron": "9" * 40}, "must be a whole number"),
        ({"layer": "layers.1"}, "Unknown `layer`"),
        ({"layer": "<script>"}, "Unknown `layer`"),
        ({"top_k": "0"}, "out of range"),
        ({"top_k": "100000"}, "out of range"),
        ({"clusters": "13"}, "Unknown `clusters`"),
        ({"explained": "x"}, "must be a whole number"),
        ({"model": "no-such-model"}, "Unknown `model`"),
    ],
)
def test_bad_parameters_show_a_message_and_the_default(cache_dir, params, message):
    at = open_page(**{"model": "mlp-1x64", "layer": "layers.0", "neuron": "3", **params})
    assert not at.exception
    assert message in warnings(at)
    assert shown_unit(at).startswith("layers.0 · neuron ")
    # The URL is corrected, so the message is shown once and the link shared is valid.
    for key, value in params.items():
        if key != "model":
            assert at.query_params.get(key) != value


def test_empty_parameters_mean_the_defaults(cache_dir):
    at = open_page(model="mlp-1x64", layer="", neuron="")
    assert not at.exception and not at.warning
    assert shown_unit(at) == "layers.0 · neuron 0"
    assert at.query_params["neuron"] == "0"


def test_cluster_controls_change_the_clusters_and_the_url(cache_dir, bundled):
    at = open_page(model="mlp-1x64", layer="layers.0", neuron="4", top_k="60", clusters="4")
    assert not at.exception and not at.warning
    assert len(at.dataframe[0].value) == 4
    assert atlas_is_cached(bundled("mlp-1x64"), "layers.0", AtlasParameters(top_k=60, n_clusters=4))
    at.selectbox(key="nx_clusters").set_value("2").run()
    assert at.query_params["clusters"] == "2" and len(at.dataframe[0].value) == 2
    at.selectbox(key="nx_cluster").set_value("C1").run()
    assert at.query_params["cluster"] == "C1"
    at.button(key="nx_next").click().run()
    assert "cluster" not in at.query_params, "another neuron: the chosen cluster no longer applies"


def test_a_cnn_gets_a_plain_message(cache_dir):
    at = open_page(model="cnn-digits")
    assert not at.exception
    assert "CNN" in at.info[0].value and not at.header


def test_mlp_2x64_first_layer(cache_dir):
    at = open_page(model="mlp-2x64", layer="layers.0", neuron="63")
    assert not at.exception and shown_unit(at) == "layers.0 · neuron 63"


def test_a_deeper_layer_by_deep_link(cache_dir, bundled):
    at = open_page(model="mlp-2x64", layer="layers.1", neuron="3")
    assert not at.exception and not at.warning
    assert at.selectbox(key="nx_layer").options == ["layers.0", "layers.1"]
    assert shown_unit(at) == "layers.1 · neuron 3"
    weights = bundled("mlp-2x64").get_submodule("layers.1").weight.detach().numpy()
    bars = figure(at, "nx_fig_in")["data"][0]
    np.testing.assert_allclose(decoded(bars["y"]), weights[3], rtol=1e-6)  # one bar per unit of layers.0
    gap = next(c.value for c in at.caption if "largest difference" in c.value)
    assert float(gap.rsplit(": ", 1)[1].rstrip(").")) < 1e-4, "embedding sums + effective bias = pre-activations"
    at.selectbox(key="nx_layer").set_value("layers.0").run()
    assert shown_unit(at) == "layers.0 · neuron 3" and at.query_params["layer"] == "layers.0"


def test_a_private_imported_model_is_explored_under_its_own_layer_names(cache_dir, digit_mlp_bytes):  # noqa: F811
    at = _upload(_session(), "my_mlp.safetensors", digit_mlp_bytes)  # mlp-1x64's weights saved as fc1/fc2
    at.button(key="import_load").click().run()
    name = at.session_state["active_model"]
    at.switch_page(PAGE)
    at.query_params.update({"model": name, "layer": "fc1", "neuron": "3"})
    at.run()
    assert not at.exception and not at.warning
    assert at.selectbox(key="nx_layer").options == ["fc1"]
    assert shown_unit(at) == "fc1 · neuron 3"


# ------------------------------------------------------------------------------------------ browser
def header_text(page) -> str:
    return page.locator("h2").first.inner_text()


@pytest.mark.browser
def test_deep_link_in_a_real_browser(page, app_url, bundled):
    page.goto(f"{app_url}/neuron?model=mlp-1x64&layer=layers.0&neuron=9")
    wait_for_app(page, timeout_ms=180_000)  # the server's cache starts empty: the atlas is computed first
    assert_no_exception(page)
    assert "layers.0 · neuron 9" in header_text(page)
    assert "neuron=9" in page.url and "/neuron" in page.url
    bias = input_weights(bundled("mlp-1x64"), "layers.0", 9).bias
    assert page.get_by_test_id("stMetric").filter(has_text="Input bias").inner_text().endswith(f"{bias:.3g}")
    # Plotly's script loads lazily after the page's first run: charts mount a moment after the metrics.
    expect(page.locator("[data-testid='stPlotlyChart']")).to_have_count(8, timeout=60_000)


@pytest.mark.browser
def test_next_and_previous_in_a_real_browser(page, app_url, bundled):
    model = bundled("mlp-1x64")
    page.goto(f"{app_url}/neuron?model=mlp-1x64&layer=layers.0&neuron=20")
    wait_for_app(page, timeout_ms=180_000)
    page.get_by_role("button", name="Next ▶").click()
    page.wait_for_url("**neuron=21**")
    wait_for_app(page)
    assert "layers.0 · neuron 21" in header_text(page)
    bias = input_weights(model, "layers.0", 21).bias
    assert page.get_by_test_id("stMetric").filter(has_text="Input bias").inner_text().endswith(f"{bias:.3g}")
    page.get_by_role("button", name="◀ Previous").click()
    page.wait_for_url("**neuron=20**")
    page.get_by_role("button", name="◀ Previous").click()
    page.wait_for_url("**neuron=19**")
    wait_for_app(page)
    assert "layers.0 · neuron 19" in header_text(page)
    assert_no_exception(page)
    # A similar neuron's button lands on that neuron, in the address bar too.
    first_similar = int(similar_neurons(model, "layers.0", 19)[0][0])
    page.get_by_role("button", name=f"neuron {first_similar} ·").click()
    page.wait_for_url(f"**neuron={first_similar}**")
    wait_for_app(page)
    assert f"layers.0 · neuron {first_similar}" in header_text(page)


@pytest.mark.browser
def test_downloads_carry_the_numbers_shown(page, app_url, bundled):
    page.goto(f"{app_url}/neuron?model=mlp-1x64&layer=layers.0&neuron=12")
    wait_for_app(page, timeout_ms=180_000)
    with page.expect_download() as download:
        page.get_by_role("button", name="Top 500 examples (CSV)").click()
    table = pd.read_csv(io.BytesIO(download.value.path().read_bytes()))
    expected = top_examples(bundled("mlp-1x64"), "layers.0", 12, k=500)
    assert list(table.columns) == ["rank", "train_index", "label", "pre_activation", "activation", "cluster"]
    np.testing.assert_array_equal(table["train_index"], expected.indices)
    np.testing.assert_allclose(table["pre_activation"], expected.pre, rtol=1e-6)
    with page.expect_download() as download:
        page.get_by_role("button", name="Their embeddings (NPZ)").click()
    with np.load(io.BytesIO(download.value.path().read_bytes())) as arrays:
        np.testing.assert_allclose(arrays["embeddings"].sum(axis=(1, 2)) + arrays["bias"], arrays["pre_activation"],
                                   atol=1e-4)
