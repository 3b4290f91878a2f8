"""The Dictionaries page: each tab's numbers against the API, training from the page, its refusals, and in a browser:
a dictionary trained with its progress shown, then a click from the scoreboard to one of its latents."""

from __future__ import annotations

import base64
import json
import re
import shutil

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import mechmnistic
from mechmnistic.analysis.feature_splitting import split_latents
from mechmnistic.analysis.polysemanticity import latent_scoreboard, neuron_scoreboard
from mechmnistic.dictionaries import list_dictionaries, load_dictionary
from mechmnistic.dictionaries.sweep import pareto_front

from ..conftest import snapshot
from ..test_dictionaries import BUNDLED_ZOO
from .conftest import assert_no_exception, wait_for_app

APP = "../../app.py"
PAGE = "app_pages/dictionaries.py"
MODEL, LAYER, BUNDLED = "mlp-1x64", "layers.0", "layers.0-topk512"
#: The tabs' slugs (what links carry) and labels.
QUALITY, TRAIN, SWEEP, SPLITTING, SCOREBOARD = "quality", "train", "sweep", "splitting", "scoreboard"
LABELS = ["Quality", "Train", "Sweep", "Feature splitting", "Polysemanticity scoreboard"]


def _open(model: str = MODEL, **params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600)
    at.query_params["model"] = model
    at.run()
    at.query_params.update(params)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _text(at: AppTest) -> str:
    return " ".join(str(el.value) for kind in ("markdown", "caption", "success", "info", "warning", "error")
                    for el in getattr(at, kind))


def _charts(at: AppTest) -> dict:
    return {chart.key: chart for chart in at.get("plotly_chart")}


def _array(value) -> np.ndarray:
    """A Plotly JSON array: a plain list, or a typed array ``{"dtype", "bdata"}`` (base64)."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def test_the_quality_tab_lists_the_layers_dictionaries_with_their_cards_metrics():
    at = _open()
    assert at.title[0].value == "Dictionaries"
    assert [tab.label for tab in at.tabs] == LABELS
    assert at.selectbox(key="dict_layer").value == LAYER
    assert at.selectbox(key="dict_sae").value == BUNDLED, "the layer's first dictionary by default"
    table = at.dataframe[0].value
    assert set(list_dictionaries(MODEL, layer=LAYER)) == set(table["id"])
    row = table.set_index("id").loc[BUNDLED]
    metrics = load_dictionary(mechmnistic.load_model(MODEL), BUNDLED).card.metrics
    assert row["variance explained"] == pytest.approx(metrics["variance_explained"])
    assert row["spliced acc %"] == pytest.approx(100 * metrics["spliced_accuracy"])
    assert row["Neuron Explorer"] == f"./neuron?model={MODEL}&layer={LAYER}&unit=0&basis=dictionary%3A{BUNDLED}"


def test_the_sweep_tab_plots_every_dictionary_with_its_pareto_front():
    at = _open(section=SWEEP)
    spec = json.loads(_charts(at)["dict_pareto"].proto.spec)
    front_line, points = spec["data"][0], spec["data"][1]
    model = mechmnistic.load_model(MODEL)
    cards = {c.id.removeprefix(f"{LAYER}-"): c for c in (load_dictionary(model, i).card
                                                         for i in list_dictionaries(MODEL, layer=LAYER))}
    shown = dict(zip(points["customdata"], zip(_array(points["x"]), _array(points["y"]), strict=True), strict=True))
    assert [label for label in points["text"] if label] == [name for name, keep in zip(
        points["customdata"], pareto_front(*np.array(list(shown.values())).T), strict=True) if keep], \
        "the front is labelled"
    assert set(shown) == set(cards)
    for label, (l0, ve) in shown.items():
        assert (l0, ve) == pytest.approx((cards[label].metrics["l0"], cards[label].metrics["variance_explained"]))
    front = pareto_front([l0 for l0, _ in shown.values()], [ve for _, ve in shown.values()])
    on_front = sorted(zip(*[_array(front_line[axis]).tolist() for axis in ("x", "y")], strict=True))
    assert on_front == sorted(xy for xy, keep in zip(shown.values(), front, strict=True) if keep)
    assert len(on_front) >= 2, "the bundled k sweep spreads L0"
    assert "Pareto front of L0 against variance explained" in _text(at)


def test_feature_splitting_shows_the_closest_latents_by_decoder_cosine():
    at = _open(section=SPLITTING, small="layers.0-topk64", large="layers.0-topk2048", latent="5")
    model = mechmnistic.load_model(MODEL)
    found = split_latents(load_dictionary(model, "layers.0-topk64"), load_dictionary(model, "layers.0-topk2048"), 5)
    lines = [m.value for m in at.markdown if m.value.startswith("Latent ") and "of layers.0-topk2048" in m.value]
    assert [int(line.split()[1]) for line in lines] == found.indices.tolist()
    assert [float(re.search(r"cosine ([0-9.]+)", line).group(1)) for line in lines] == pytest.approx(
        found.cosines, abs=5e-4)
    assert "basis=dictionary%3Alayers.0-topk2048" in lines[0]
    assert len(at.get("plotly_chart")) == 1 + len(found.indices), "the latent's top examples, then each match's"


def test_the_scoreboard_shows_the_apis_numbers_and_a_selected_row_opens_the_unit(monkeypatch):
    at = _open(section=SCOREBOARD, sae=BUNDLED)
    model = mechmnistic.load_model(MODEL)
    latents = latent_scoreboard(model, load_dictionary(model, BUNDLED))
    neurons = neuron_scoreboard(model, LAYER)
    neurons_shown, shown = (df.value for df in at.dataframe)  # neurons, then latents
    np.testing.assert_array_equal(shown["clusters"], latents.n_clusters)
    np.testing.assert_allclose(shown["label entropy (bits)"], latents.entropy)
    np.testing.assert_array_equal(neurons_shown["clusters"], neurons.n_clusters)
    assert f"{neurons.summary()['median_entropy_bits']:.2f} bits" in [m.value for m in at.metric]
    # Selecting a row of the latents' table opens that latent in the Neuron Explorer, whose header takes the
    # latent's cluster count from the stored scoreboard instead of clustering its examples again.
    import ui.neuron_data

    monkeypatch.setattr(ui.neuron_data, "latent_view", lambda *a, **k: pytest.fail("clustered the latent again"))
    at.session_state["dict_scoreboard_latents"] = {"selection": {"rows": [7], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.query_params["unit"] == "7" and at.query_params["basis"] == f"dictionary:{BUNDLED}"
    assert at.header[0].value == f"{LAYER} · latent 7 of {BUNDLED}"
    assert next(m.value for m in at.metric if m.label == "Feature clusters") == str(latents.n_clusters[7])


def test_a_model_without_dictionaries_and_a_private_one_say_what_to_do():
    at = _open("cnn-digits")
    assert at.selectbox(key="dict_layer").value == "conv1"
    assert "conv1 has no dictionary yet: train one in the **Train** tab" in _text(at)
    at = _open("cnn-digits", section=SCOREBOARD)
    assert "train a dictionary first" in _text(at)
    at = _open("cnn-digits", section=SPLITTING)
    assert "Feature splitting compares two dictionaries of conv1; it has 0" in _text(at)


@pytest.fixture
def page_zoo(tmp_path, monkeypatch):
    """A zoo holding mlp-1x64 with its dictionaries, for tests that train from the page."""
    zoo = tmp_path / "zoo"
    shutil.copytree(BUNDLED_ZOO / MODEL, zoo / MODEL)
    monkeypatch.setenv("MECHMNISTIC_MODELS", str(zoo))
    return zoo


def _fill_training(at: AppTest, latents: int, k: int, steps: int, images: int, name: str) -> None:
    at.number_input(key="dict_train_latents").set_value(latents)
    at.number_input(key="dict_train_k").set_value(k)
    at.number_input(key="dict_train_steps").set_value(steps)
    at.number_input(key="dict_train_images").set_value(images)
    at.text_input(key="dict_train_name").set_value(name)


def test_training_from_the_page_saves_selects_and_reports_the_dictionary(page_zoo):
    at = _open(section=TRAIN)
    _fill_training(at, 16, 4, 60, 1000, "page-t16")
    at.button(key="FormSubmitter:dict_train_form-Train").click().run()
    assert not at.exception and not at.error
    assert "page-t16" in list_dictionaries(MODEL)
    card = load_dictionary(mechmnistic.load_model(MODEL), "page-t16").card
    assert card.d_sae == 16 and card.k == 4 and card.training["steps"] == 60 and card.training["n_images"] == 1000
    success = " ".join(s.value for s in at.success)
    assert "Trained and saved **page-t16**" in success and f"{card.metrics['variance_explained']:.3f}" in success
    assert at.selectbox(key="dict_sae").value == "page-t16", "the new dictionary is selected"
    # The same id again is refused without the box ticked, and nothing changes on disk.
    before = snapshot(page_zoo)
    _fill_training(at, 8, 2, 30, 1000, "page-t16")
    at.button(key="FormSubmitter:dict_train_form-Train").click().run()
    assert "already has a dictionary 'page-t16'" in " ".join(e.value for e in at.error)
    assert snapshot(page_zoo) == before
    _fill_training(at, 8, 20, 30, 1000, "page-t8")
    at.button(key="FormSubmitter:dict_train_form-Train").click().run()
    assert "k (20) must be at most the number of latents (8)" in " ".join(e.value for e in at.error)
    assert snapshot(page_zoo) == before


@pytest.mark.browser
def test_train_in_a_browser_then_from_the_scoreboard_to_a_latent(page, app_with_tmp_zoo):
    base, zoo = app_with_tmp_zoo
    page.goto(f"{base}/dictionaries?model={MODEL}&section={TRAIN}")
    wait_for_app(page, timeout_ms=180_000)
    main = page.locator("[data-testid='stMain']")
    for label, value in (("Latents", "24"), ("k (TopK)", "4"), ("Steps", "3000"), ("Training images", "5000")):
        field = main.get_by_label(label, exact=True)
        field.fill(value)
    main.get_by_label("Id (empty: LAYER-KINDN)").fill("browser-t24")
    main.get_by_role("button", name="Train", exact=True).click()
    # The progress bar shows the stage and the time left while it trains.
    main.get_by_text(re.compile(r"step \d+ of 3000.*left")).first.wait_for(timeout=120_000)
    main.get_by_text("Trained and saved browser-t24").wait_for(timeout=300_000)
    wait_for_app(page)
    assert_no_exception(page)
    assert (zoo / MODEL / "dictionaries" / "browser-t24" / "sae_weights.safetensors").exists()

    page.goto(f"{base}/dictionaries?model={MODEL}&sae=browser-t24&section={SCOREBOARD}")
    wait_for_app(page, timeout_ms=300_000)
    assert_no_exception(page)
    table = page.locator(".st-key-dict_scoreboard_latents [data-testid='stDataFrame']")
    table.wait_for(timeout=60_000)
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    # The row-selection column is the grid's first (about 30 px); the header row and each row are 35 px high.
    page.mouse.click(box["x"] + 15, box["y"] + 35 + 3 * 35 + 17)
    page.wait_for_url(re.compile(r"/neuron\?.*unit=3(&|$)"), timeout=60_000)
    wait_for_app(page, timeout_ms=180_000)
    assert_no_exception(page)
    assert "basis=dictionary%3Abrowser-t24" in page.url
    assert page.locator("h2").first.inner_text() == f"{LAYER} · latent 3 of browser-t24"
