"""The Hypothesis & causal scrubbing page: AppTest for every control and bad input, and a real browser
for the two flows the issue names (a typed band's histogram and agreement; a scrubbing sweep's plot)."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect
from streamlit.testing.v1 import AppTest

from mechmnistic.analysis.hypothesis import BandFit, BandRule, Hypothesis, compare, image_scores
from mechmnistic.analysis.predictions import predicted_classes
from mechmnistic.analysis.scrubbing import scrub
from mechmnistic.analysis.templates import resolve_template
from mechmnistic.labels import CHALLENGE_LABEL_FUNCTION

from .conftest import assert_no_exception, open_app_page, wait_for_app

APP = "../../app.py"
PAGE = "app_pages/hypothesis.py"
HIDDEN = ("-33.93", "-15.22", "33.93", "15.22", CHALLENGE_LABEL_FUNCTION["note"][:30])


def open_page(**params: str) -> AppTest:
    return open_app_page(PAGE, **params)


def figures(at: AppTest) -> dict[str, dict]:
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {(spec["layout"].get("title") or {}).get("text", ""): spec for spec in specs}


def array(value) -> np.ndarray:
    """A Plotly JSON array: a list, or a typed array ``{"dtype", "bdata"}`` (base64)."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def page_text(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "error", "warning", "metric", "code", "text_input",
                                  "text_area") for e in at.get(kind) if isinstance(getattr(e, "value", None), str)]
    parts += [json.dumps(chart.proto.spec) for chart in at.get("plotly_chart")]
    parts += [df.value.to_csv() for df in at.dataframe]
    return "\n".join(parts) + json.dumps(dict(at.query_params))


@pytest.fixture(scope="module")
def challenge(bundled):
    return bundled("challenge-cnn")


def test_default_page_shows_the_histogram_and_asks_for_a_band():
    at = open_page()
    assert not at.exception
    assert any("s(x) over the 60,000 training images" in title for title in figures(at))
    assert any("Type the band's lo and hi" in i.value for i in at.info)
    assert at.query_params["template"] == "train:6" and at.query_params["rule"] == "band"


def test_a_typed_band_shows_the_agreement_python_computes(challenge, mnist_test):
    at = open_page(model="challenge-cnn", lo="-33.9", hi="-15.2")
    assert not at.exception
    rule = BandRule(-33.9, -15.2)
    test_scores = image_scores(mnist_test.images, resolve_template("train:6").image)
    expected = compare(rule, test_scores, predicted_classes(challenge, "test")).agreement
    assert metric(at, "Agreement with the model (test)") == f"{expected:.2%}"
    histogram = next(spec for title, spec in figures(at).items() if title.startswith("s(x) over"))
    lines = sorted(shape["x0"] for shape in histogram["layout"]["shapes"])
    assert lines == [-33.9, -15.2]
    counts = at.dataframe[0].value
    assert counts["region"].tolist() == ["below", "inside", "above"]
    assert counts["test images"].sum() == 10_000
    scatter = next(spec for spec in figures(at).values() if spec["data"][0]["type"] == "scattergl")
    assert sum(len(array(trace["x"])) for trace in scatter["data"]) == 60_000
    assert "mechmnistic hypothesis challenge-cnn --layer fc1 --template train:6 --center 0.5 --band -33.9 -15.2" in \
        at.code[0].value


def test_typing_the_band_into_the_inputs_updates_the_url_and_the_numbers():
    at = open_page(model="challenge-cnn")
    at.number_input(key="hyp_lo").set_value(-34.0)
    at.number_input(key="hyp_hi").set_value(-15.0).run()
    assert not at.exception
    assert at.query_params["lo"] == "-34" and at.query_params["hi"] == "-15"
    assert float(metric(at, "Agreement with the model (train)").rstrip("%")) > 95


def test_fitting_finds_the_band_and_never_prints_the_hidden_one(challenge, mnist_train):
    at = open_page(model="challenge-cnn", fit="1")
    assert not at.exception
    scores = image_scores(mnist_train.images, resolve_template("train:6").image)
    fit = BandFit().fit(scores, predicted_classes(challenge, "train"))
    rule_text = next(m.value for m in at.markdown if m.value.startswith("**Rule:**"))
    assert f"{fit.low_:.4g} < s < {fit.high_:.4g}" in rule_text and "fitted" in rule_text
    assert metric(at, "Agreement with the model (train)") == f"{fit.agreement_:.2%}"
    assert "lo" not in at.query_params and at.query_params["fit"] == "1"
    for hidden in HIDDEN:
        assert hidden not in page_text(at)


@pytest.mark.parametrize("params", [{}, {"lo": "-40", "hi": "-10"}])
def test_the_hidden_label_function_is_never_shown(params):
    at = open_page(model="challenge-cnn", **params)
    assert not at.exception
    text = page_text(at)
    for hidden in HIDDEN:
        assert hidden not in text


@pytest.mark.parametrize(
    "params, kind, message",
    [
        ({"lo": "-10", "hi": "-20"}, "error", "band low (-10) is above band high (-20)"),
        ({"template": "train:60000"}, "error", "template index 60000 is out of range for train (0..59999)"),
        ({"template": "unit:fc1:200"}, "error", "unit 200 is out of range for fc1 (0..199)"),
        ({"template": "banana"}, "error", "is not 'train:N'"),
        ({"lo": "-33", "hi": "-15", "groups": "dead:0-5"}, "error", "units 6-199 are in no group"),
        ({"lo": "-33", "hi": "-15", "groups": "ones:0-199"}, "error", "neither 'dead' nor a region"),
        ({"lo": "-33", "hi": "-15", "tol": "1e-3,x"}, "error", "Tolerances must be numbers"),
        ({"lo": "-33", "hi": "-15", "tol": "5"}, "error", "fractions of the score range"),
    ],
)
def test_bad_input_gives_a_clear_message_not_a_crash(params, kind, message):
    at = open_page(model="challenge-cnn", **params)
    assert not at.exception
    shown = [e.value for e in at.get(kind)]
    assert any(message in text for text in shown), shown


def test_unit_groups_are_derived_and_editable():
    at = open_page(model="challenge-cnn", lo="-33.9", hi="-15.2")
    table = next(df.value for df in at.dataframe if "which" in df.value.columns)
    assert table["group"].tolist() == ["dead", "below", "above"] and table["units"].sum() == 200
    at.button(key="hyp_groups_edit").click().run()
    text = at.text_area(key="hyp_groups").value
    assert text.startswith("dead:") and ";below:" in text and ";above:" in text
    at.text_area(key="hyp_groups").set_value("dead:0-99;below:100-149;above:150-199").run()
    assert not at.exception and at.query_params["groups"] == "dead:0-99;below:100-149;above:150-199"
    table = next(df.value for df in at.dataframe if "which" in df.value.columns)
    assert table["units"].tolist() == [100, 50, 50]
    at.button(key="hyp_groups_reset").click().run()
    assert "groups" not in at.query_params


def test_scrubbing_in_the_app_gives_the_python_numbers(challenge):
    at = open_page(model="challenge-cnn", lo="-33.93", hi="-15.22", tol="0.001,0.1")
    at.button(key="hyp_run_scrub").click().run()
    assert not at.exception
    plot = next(spec for title, spec in figures(at).items() if title.startswith("Causal scrubbing of fc1"))
    shown = array(plot["data"][0]["y"])
    expected = scrub(challenge, "fc1", Hypothesis(resolve_template("train:6"), BandRule(-33.93, -15.22)),
                     tolerances=(1e-3, 0.1), seed=0)
    np.testing.assert_allclose(shown, expected.preserved)
    assert shown[0] >= 0.9 and at.query_params["scrub"] == "1"


def test_other_models_layers_and_rules():
    at = open_page(model="cnn-digits", layer="conv2", rule="threshold", fit="1", label_a="other", label_b="1")
    assert not at.exception
    rule_text = next(m.value for m in at.markdown if m.value.startswith("**Rule:**"))
    assert "any other class when s <=" in rule_text and "else class 1" in rule_text
    table = next(df.value for df in at.dataframe if "which" in df.value.columns)
    assert table["units"].sum() == 16  # conv2's channels
    at = open_page(template="unit:layers.0:7", invert="1", rule="threshold", t="-2")
    assert not at.exception and "t = 1 - unit:layers.0:7" in " ".join(figures(at))


# -- in a real browser --------------------------------------------------------------------------


@pytest.mark.browser
def test_typed_band_shows_histogram_and_agreement_in_a_browser(page, app_url, challenge, mnist_test):
    test_scores = image_scores(mnist_test.images, resolve_template("train:6").image)
    expected = compare(BandRule(-33.9, -15.2), test_scores, predicted_classes(challenge, "test")).agreement
    page.goto(f"{app_url}/hypothesis?model=challenge-cnn")
    wait_for_app(page, 180_000)
    assert_no_exception(page)
    for label, name, value in (("Band low (lo)", "lo", "-33.9"), ("Band high (hi)", "hi", "-15.2")):
        field = page.get_by_label(label)
        expect(field).to_be_editable(timeout=60_000)
        field.fill(value)
        expect(field).to_have_value(value)
        field.press("Enter")
        try:
            page.wait_for_url(re.compile(f"{name}={value}"), timeout=30_000)  # the rerun has taken the value
        except PlaywrightTimeoutError:
            # Under load (the whole suite on 2 cores) the browser once dropped this Enter while the previous
            # rerun's elements were being replaced (the URL never changed; alone the test passes): press again.
            field.press("Enter")
            page.wait_for_url(re.compile(f"{name}={value}"), timeout=60_000)
        wait_for_app(page, 180_000)
    assert_no_exception(page)
    # Streamlit shows lazily loaded elements a moment after the script has finished: wait for them.
    expect(page.get_by_text("Agreement with the model (test)")).to_be_visible(timeout=60_000)
    expect(page.get_by_text(f"{expected:.2%}", exact=True)).to_be_visible(timeout=60_000)
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=60_000)
    assert "lo=-33.9" in page.url and "hi=-15.2" in page.url


@pytest.mark.browser
def test_scrubbing_sweep_finishes_with_its_plot_in_a_browser(page, app_url):
    page.goto(f"{app_url}/hypothesis?model=challenge-cnn&lo=-33.93&hi=-15.22&tol=0.001,0.01,0.1")
    wait_for_app(page, 180_000)
    page.get_by_role("button", name="Run causal scrubbing").click()
    page.get_by_text("Causal scrubbing of fc1 on 60,000 train images").wait_for(timeout=180_000)
    wait_for_app(page, 180_000)
    assert_no_exception(page)
    assert page.get_by_text("Every group resampled from random images").is_visible()
    assert "scrub=1" in page.url
