"""Dictionary latents as units in the explorers: every view a neuron gets, the logits split over latents.

AppTest opens ``mlp-1x64``'s bundled dictionary (``layers.0-topk512``) as a
link would; the browser opens a latent by deep link and clicks from it to a
neuron it reads.
"""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import mechmnistic
from mechmnistic.analysis.latents import latent_activations
from mechmnistic.analysis.splicing import latent_logit_effects
from mechmnistic.dictionaries import load_dictionary
from mechmnistic.hooks import forward_to, to_pixels
from ui.links import CLASSIFY_PANEL_PARAM, LATENTS, NEURON_VIEW_PARAM, NEURON_VIEWS, ON_INPUT, READS

from .conftest import assert_no_exception, wait_for_app
from .tabs import open_tab

APP = "../../app.py"
MODEL, LAYER, DICTIONARY = "mlp-1x64", "layers.0", "layers.0-topk512"
BASIS = f"dictionary:{DICTIONARY}"


def _open(page: str, **params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["model"] = MODEL
    at.run()
    at.query_params.update(params)
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@pytest.fixture(scope="module")
def dictionary():
    return load_dictionary(mechmnistic.load_model(MODEL), DICTIONARY)


def _first(values) -> int:
    """The first entry of a Plotly JSON array (a list or a base64 typed array)."""
    if isinstance(values, dict):
        return int(np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])[0])
    return int(values[0])


def _a_live_latent(dictionary) -> int:
    values = latent_activations(mechmnistic.load_model(MODEL), dictionary, "train").values
    return int(np.argmax((values > 0).mean(axis=0)))


def test_a_latent_has_every_view_a_neuron_has(dictionary, mnist_test):
    latent = _a_live_latent(dictionary)
    at = _open("app_pages/neuron_explorer.py", layer=LAYER, unit=str(latent), basis=BASIS)
    assert at.header[0].value == f"{LAYER} · latent {latent} of {DICTIONARY}"
    assert at.session_state["nx_basis"] == BASIS and at.selectbox(key="nx_basis").options[0] == "its neurons"
    metrics = {m.label: m.value for m in at.metric}
    values = latent_activations(mechmnistic.load_model(MODEL), dictionary, "train").values[:, latent]
    assert metrics["Fires on"] == f"{(values > 0).mean():.1%}"
    assert metrics["Encoder bias"] == f"{float(dictionary.b_enc[latent]):.3g}"
    charts = {chart.key for chart in at.get("plotly_chart")}
    assert {"nx_fig_hist", "nx_fig_classes", f"nx_latent_logits_{DICTIONARY}_{LAYER}_{latent}".replace(".", "-")} \
        <= charts
    reads_writes = next(chart for chart in at.get("plotly_chart") if chart.key.startswith("nx_latent_rw_"))
    encoder_bars, decoder_bars = json.loads(reads_writes.proto.spec)["data"]
    # Each panel's top bar (largest magnitude first) is the unit the encoder reads, or the decoder writes, most.
    assert _first(encoder_bars["customdata"]) == int(np.argmax(np.abs(dictionary.W_enc[:, latent].numpy())))
    assert _first(decoder_bars["customdata"]) == int(np.argmax(np.abs(dictionary.W_dec[latent].numpy())))
    for view in NEURON_VIEWS[1:]:
        open_tab(at, NEURON_VIEW_PARAM, view, READS)
        assert not at.exception, (view, at.exception)
    open_tab(at, NEURON_VIEW_PARAM, ON_INPUT, READS)
    built = next(c.value for c in at.caption if "the latent's pre-activation on this input" in c.value)
    assert float(re.search(r"difference ([0-9.e+-]+)\)", built).group(1)) < 1e-4
    on_input = next(c.value for c in at.caption if "Embedding sum" in c.value)
    assert "exact gradient of the latent's encoder pre-activation" in on_input
    links = at.dataframe[0].value["open"].tolist()
    assert links and all(f"layer={LAYER}" in link and "basis" not in link for link in links), "to the neurons it reads"


def test_the_logits_split_over_latents_add_up(dictionary, mnist_test):
    at = _open("app_pages/classification_explorer.py", test_index="8", **{CLASSIFY_PANEL_PARAM: LATENTS.slug})
    caption = next(c.value for c in at.caption if "latents are active on this input" in c.value)
    assert float(re.search(r"largest difference over the classes ([0-9.e+-]+)\)", caption).group(1)) < 1e-4
    split = latent_logit_effects(mechmnistic.load_model(MODEL), dictionary, mnist_test.images[8][None])
    np.testing.assert_allclose(split.total(), split.logits, atol=1e-4)
    assert f"{int((split.latents[0] != 0).sum())} of {dictionary.d_sae} latents" in caption
    table = at.dataframe[0].value
    assert len(table) and all(f"basis={BASIS.replace(':', '%3A')}" in link for link in table["Neuron Explorer"])
    assert all("test_index=8" in link for link in table["Neuron Explorer"]), "on the same input"


def test_a_layer_without_a_dictionary_says_where_to_make_one():
    """cnn-digits' fc1 has no dictionary: the tab says so and links to the Dictionaries page."""
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["model"] = "cnn-digits"
    at.run()
    at.query_params.update({"test_index": "3", CLASSIFY_PANEL_PARAM: LATENTS.slug})
    at.switch_page("app_pages/classification_explorer.py").run()
    assert not at.exception
    assert any("fc1 has no dictionary yet" in i.value and "/dictionaries" in i.value for i in at.info)


def test_a_latents_encoder_reads_the_layer_it_says(dictionary, mnist_test):
    """The latent's parts on an input add up to its encoder pre-activation from the model's own activations."""
    model = mechmnistic.load_model(MODEL)
    with torch.no_grad():
        h = forward_to(model, to_pixels(mnist_test.images[:5]), model.layout[LAYER].activation_hook)
    pre = dictionary.pre_activations(h)
    latent = _a_live_latent(dictionary)
    parts = (h - dictionary.b_dec) * dictionary.W_enc[:, latent]
    torch.testing.assert_close(parts.sum(1) + dictionary.b_enc[latent], pre[:, latent], atol=1e-5, rtol=0)


@pytest.mark.browser
def test_a_latent_by_deep_link_and_on_to_a_neuron_it_reads(page, app_url, dictionary):
    latent = _a_live_latent(dictionary)
    page.goto(f"{app_url}/neuron?model={MODEL}&layer={LAYER}&unit={latent}&basis={BASIS}")
    wait_for_app(page, timeout_ms=180_000)
    assert_no_exception(page)
    assert page.locator("h2").first.inner_text() == f"{LAYER} · latent {latent} of {DICTIONARY}"
    strongest = int(np.argmax(np.abs(dictionary.W_enc[:, latent].numpy())))
    bars = page.locator("." + f"st-key-nx_latent_rw_{DICTIONARY}_{LAYER}_{latent}".replace(".", "-"))
    bars.locator(".main-svg").first.wait_for(timeout=60_000)
    plot = bars.locator(".js-plotly-plot").first
    # The first panel's top bar is the encoder weight of largest magnitude (the default order): click it.
    box = plot.evaluate("(gd) => { const b = gd.querySelector('.bars .point path').getBoundingClientRect();"
                        " return [b.x + b.width / 2, b.y + b.height / 2]; }")
    page.mouse.click(*box)
    page.wait_for_url(re.compile(rf"/neuron\?.*unit={strongest}(&|$)"), timeout=60_000)
    wait_for_app(page, timeout_ms=180_000)
    assert_no_exception(page)
    assert "basis=" not in page.url
    assert page.locator("h2").first.inner_text() == f"{LAYER} · neuron {strongest}"


def test_a_latent_is_ablated_and_visualised_from_its_page(dictionary):
    from mechmnistic.analysis.latent_interventions import ablate_latents_on_split

    latent = _a_live_latent(dictionary)
    at = _open("app_pages/neuron_explorer.py", layer=LAYER, unit=str(latent), basis=BASIS)
    link = next(m.value for m in at.markdown if "Feature visualisation of this latent" in m.value)
    assert f"dirs=latent%3A{DICTIONARY}%3A{latent}" in link and "target=directions" in link
    at.radio(key="nx_latent_ablation").set_value("zero").run()
    at.button(key="nx_latent_ablate").click().run()
    assert not at.exception
    shown = next(df.value for df in at.dataframe if "fraction_changed" in df.value.columns)
    expected = ablate_latents_on_split(mechmnistic.load_model(MODEL), dictionary, [latent], "zero").summary()
    total = shown[shown["group"] == "all"].iloc[0]
    assert total["fraction_changed"] == pytest.approx(expected.fraction_changed)
    assert total["accuracy_after"] == pytest.approx(expected.accuracy_after)
    assert total["accuracy_before"] == pytest.approx(0.9819), "spliced with its error term, the model is exact"


def test_feature_visualisation_of_a_latent(dictionary):
    at = _open("app_pages/feature_viz.py", layer=LAYER, target="directions", dirs=f"latent:{DICTIONARY}:5", steps="20")
    assert not at.exception and not at.error
    assert "features_grid" in {chart.key for chart in at.get("plotly_chart")}
