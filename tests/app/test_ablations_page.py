"""The Attribution & ablations page: AppTest for its three sections and bad input, and a real browser."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from mechmnistic.analysis.ablation import ablate, patch_activations
from mechmnistic.analysis.activations import layer_activations
from mechmnistic.analysis.hypothesis import BandRule, derive_unit_groups, image_scores
from mechmnistic.analysis.templates import resolve_template
from mechmnistic.cache import model_fingerprint
from mechmnistic.models import ModelCard, build_model, mlp_config

from .conftest import assert_no_exception, open_app_page, wait_for_app
from .test_hypothesis_page import HIDDEN, array, figures, page_text

APP = "../../app.py"
PAGE = "app_pages/ablations.py"
BAND = {"model": "challenge-cnn", "hyp": "1", "lo": "-33.93", "hi": "-15.22"}


def open_page(**params: str) -> AppTest:
    return open_app_page(PAGE, **params)


def table_with(at: AppTest, column: str):
    return next(df.value for df in at.dataframe if column in df.value.columns)


@pytest.fixture(scope="module")
def challenge_groups(bundled, mnist_train, mnist_test):
    model = bundled("challenge-cnn")
    rule, template = BandRule(-33.93, -15.22), resolve_template("train:6")
    regions = rule.regions(image_scores(mnist_train.images, template.image))
    groups = derive_unit_groups(layer_activations(model, "fc1", "train").values, regions, rule)
    return model, groups, rule.regions(image_scores(mnist_test.images, template.image))


def test_default_model_runs_every_section():
    at = open_page()
    assert not at.exception
    titles = " ".join(figures(at))
    assert "logit 0 split by group" in titles and "units of layers.0" in titles
    table = table_with(at, "fraction_changed")
    assert table["group"].tolist() == [f"class {c}" for c in range(10)] + ["all"]
    assert at.text_input(key="abl_units").value == "dead"


def test_ablation_numbers_are_the_python_numbers(challenge_groups):
    model, groups, regions = challenge_groups
    at = open_page(**BAND, units="below", method="min")
    assert not at.exception
    expected = ablate(model, "fc1", "below", "min", groups=groups).breakdown(regions, ("below", "inside", "above"))
    table = table_with(at, "fraction_changed")
    assert table["group"].tolist() == ["below", "inside", "above", "all"]
    np.testing.assert_allclose(table["fraction_changed"], [row.fraction_changed for row in expected])
    assert table["fraction_changed"][0] > 0.8 and table["fraction_changed"][2] < 0.05
    assert at.query_params["units"] == "below" and at.query_params["method"] == "min"


def test_stacked_bars_sum_to_the_logit_difference():
    at = open_page(**BAND, sample="40")
    stacked = next(spec for title, spec in figures(at).items() if "split by group" in title)
    bars = [trace for trace in stacked["data"] if trace["type"] == "bar"]
    assert [bar["name"] for bar in bars] == ["dead", "below", "above"]
    dot = next(trace for trace in stacked["data"] if trace["type"] == "scatter")
    bias = stacked["layout"]["shapes"][0]["y0"]
    total = sum(array(bar["y"]) for bar in bars) + bias
    np.testing.assert_allclose(total, array(dot["y"]), atol=1e-9)
    assert np.all(np.diff(array(dot["y"])) >= 0) and len(array(dot["y"])) == 40


def test_resample_compare_and_breakdowns():
    at = open_page(**BAND, units="above", method="resample", aseed="3", by="model prediction")
    assert not at.exception
    assert table_with(at, "fraction_changed")["group"].tolist() == ["predicted 0", "predicted 1", "all"]
    at.button(key="abl_compare").click().run()
    comparison = next(df.value for df in at.dataframe if "all but dead" in df.value.index)
    assert list(comparison.index) == sorted(["dead", "below", "above", "all but dead"])
    assert comparison.loc["dead"].max() < 0.01  # resampling units that never fire changes nothing


def test_patching_from_a_test_image(bundled, mnist_test):
    at = open_page(model="challenge-cnn", psource="5", ptarget="9", punits="all")
    assert not at.exception
    model = bundled("challenge-cnn")
    expected = patch_activations(model, "fc1", "all", mnist_test.images[5], images=mnist_test.images[9][None])
    logits = table_with(at, "logit after")
    np.testing.assert_allclose(logits["logit after"], expected.patched_logits[0], atol=1e-5)
    assert any("of predictions change" in m.value for m in at.markdown)


def test_typed_groups_and_other_layers():
    at = open_page(model="cnn-digits", layer="conv2", agroups="early:0-7;late:8-15", units="late", method="zero")
    assert not at.exception
    assert "**early**: 8 units · **late**: 8 units" in " ".join(c.value for c in at.caption)
    assert "zero-ablating 8 units of conv2 (late)" in " ".join(figures(at))
    assert table_with(at, "fraction_changed")["count"].iloc[-1] == 10_000


@pytest.mark.parametrize(
    "params, kind, message",
    [
        ({"units": "nope"}, "error", "unknown unit group 'nope'"),
        ({"units": "70"}, "error", "unit 70 is out of range: this layer has units 0..63"),
        ({"agroups": "x 1"}, "error", "needs a ':'"),
        ({"target_a": "3", "target_b": "3"}, "error", "two different classes"),
        ({"punits": "5-1"}, "error", "runs backwards"),
        ({"hyp": "1", "template": "test:10000"}, "error", "out of range for test (0..9999)"),
    ],
)
def test_bad_input_gives_a_clear_message_not_a_crash(params, kind, message):
    at = open_page(**params)
    assert not at.exception
    shown = [e.value for e in at.get(kind)]
    assert any(message in text for text in shown), shown


def test_the_hidden_label_function_is_never_shown():
    at = open_page(**{**BAND, "lo": "-40", "hi": "-10"})
    assert not at.exception
    text = page_text(at)
    for hidden in HIDDEN:
        assert hidden not in text
    assert any("labelling function stays hidden" in c.value for c in at.caption)


@pytest.mark.browser
def test_ablations_page_in_a_real_browser(page, app_url):
    page.goto(f"{app_url}/ablations?model=challenge-cnn&hyp=1&lo=-33.93&hi=-15.22&units=below&method=min")
    wait_for_app(page, 180_000)
    assert_no_exception(page)
    assert page.get_by_text(re.compile(r"min-ablating \d+ units of fc1 \(below\) on the test set")).is_visible()
    assert page.get_by_text(re.compile("logit 1 - logit 0 split by group")).is_visible()


@pytest.mark.parametrize("page", [PAGE, "app_pages/hypothesis.py"])
def test_a_private_two_class_model_with_unknown_labels(page):
    """An imported model nobody told us the labels of: every section runs, without accuracies."""
    torch.manual_seed(0)
    model = build_model(mlp_config(hidden_sizes=(16,), n_classes=2))
    model.card = ModelCard("tiny@" + model_fingerprint(model)[:8], model.config, model_fingerprint(model),
                           label_function={"name": "unknown"}, source="imported")
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["private_models"] = {model.card.name: model}
    at.query_params["model"] = model.card.name
    at.query_params["fit"] = "1"
    at.switch_page(page)
    at.run()
    assert not at.exception
    assert at.session_state["active_model"] == model.card.name
    if page == PAGE:
        table = table_with(at, "fraction_changed")
        assert table["accuracy_before"].isna().all() and table["group"].tolist() == ["class 0", "class 1", "all"]
