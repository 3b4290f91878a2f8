"""The Walkthrough page: every step renders real results, the answer appears only after Reveal, the numbers
shown are the core's, and it works whichever model the sidebar holds; and a real browser clicks Reveal."""

from __future__ import annotations

import json
import re
import shutil
from urllib.parse import parse_qs

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from mechmnistic.analysis import walkthrough as w
from mechmnistic.analysis.hypothesis import image_scores
from mechmnistic.analysis.templates import resolve_template
from mechmnistic.labels import CHALLENGE_LABEL_FUNCTION
from ui import loaders

from .conftest import REPO, assert_no_exception, open_app_page, wait_for_app
from .test_hypothesis_page import HIDDEN, array, figures, metric, page_text

APP = "../../app.py"
PAGE = "app_pages/walkthrough.py"


def open_page(**params: str) -> AppTest:
    return open_app_page(PAGE, **params)


def shown(at: AppTest) -> str:
    """Everything the page shows as text (the hypothesis page's helper, plus success boxes and metric deltas)."""
    return "\n".join([page_text(at), *(e.value for e in at.success), *(str(m.delta) for m in at.metric)])


def reveal(at: AppTest) -> AppTest:
    at.button(key="walkthrough_reveal").click().run()
    assert not at.exception
    return at


@pytest.fixture(scope="module")
def expected(bundled, mnist_train, mnist_test):
    """What the core computes for the walkthrough: the fitted band, its sweep, and the answer."""
    model = bundled(w.MODEL)
    template = resolve_template(w.TEMPLATE).image
    band = w.fit_band(model, image_scores(mnist_train.images, template, w.CENTER),
                      image_scores(mnist_test.images, template, w.CENTER))
    return band, w.scrub_band(model, band), w.reveal(model, band)


def test_the_answer_is_hidden_until_reveal_is_clicked_and_shown_after():
    at = open_page(model=w.MODEL)
    assert not at.exception
    before = shown(at)
    for hidden in HIDDEN:
        assert hidden not in before, hidden
    assert [h.value for h in at.header][-1] == "8. The answer"
    at = reveal(at)
    after = shown(at)
    assert CHALLENGE_LABEL_FUNCTION["note"] in after
    answer = next(df.value for df in at.dataframe if "hidden" in df.value.columns)
    assert answer["hidden"].tolist() == [-33.93, -15.22]
    at.button(key="walkthrough_hide").click().run()
    assert CHALLENGE_LABEL_FUNCTION["note"] not in shown(at)


def test_the_numbers_shown_are_the_cores(expected):
    band, sweep, answer = expected
    at = reveal(open_page(model=w.MODEL))
    assert metric(at, "Fitted band") == f"{band.rule.low:.4g} < s < {band.rule.high:.4g}"
    assert metric(at, "Agreement with the model (train)") == f"{band.train.agreement:.2%}"
    assert metric(at, "Agreement with the model (test)") == f"{band.test.agreement:.2%}"
    at_1e3 = sweep.preserved[list(w.TOLERANCES).index(1e-3)]
    assert metric(at, "Predictions preserved at tolerance 0.001") == f"{at_1e3:.2%}"
    plot = next(spec for title, spec in figures(at).items() if title.startswith("Causal scrubbing of fc1"))
    np.testing.assert_allclose(array(plot["data"][0]["y"]), sweep.preserved)
    groups = next(df.value for df in at.dataframe if "which" in df.value.columns)
    assert groups["group"].tolist() == list(sweep.groups)
    assert groups["units"].tolist() == [len(u) for u in sweep.groups.values()]
    table = next(df.value for df in at.dataframe if "hidden" in df.value.columns)
    np.testing.assert_allclose(table["fitted"], [band.rule.low, band.rule.high])
    np.testing.assert_allclose(table["miss (% of the hidden edge)"], [100 * e.relative for e in answer.edges])
    assert (table["miss (% of the hidden edge)"] < 2).all()
    assert f"{answer.test.agreement:.2%} of the time" in shown(at)


def test_every_step_renders_and_links_to_its_tool_with_the_same_settings():
    at = open_page(model=w.MODEL)
    assert [h.value for h in at.header] == [
        "1. The model and the task", "2. The geometry of fc1", "3. What the arms' units look for",
        "4. The clue as a template", "5. A band fitted to the model", "6. Unit groups and causal scrubbing",
        "7. Dictionary features: cleaner detectors?", "8. The answer"]
    titles = list(figures(at))
    assert any(t.startswith("s(x) over the 60,000 training images") for t in titles)
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    pca = next(spec for spec in specs if spec["layout"].get("yaxis", {}).get("title", {}).get("text", "")
               .startswith("PC2"))
    assert sum(len(array(trace["x"])) for trace in pca["data"] if trace["type"] == "scattergl") == 60_000
    links = " ".join(m.value for m in at.markdown)
    assert "./geometry?model=challenge-cnn&layer=fc1&color=prediction&dirs=logit%3A1-0" in links
    assert "./features?model=challenge-cnn&layer=fc1&target=units&units=all" in links
    assert "./hypothesis?model=challenge-cnn&layer=fc1&template=train%3A6&center=0.5&rule=band&fit=1" in links
    assert "tol=0.0001%2C0.001%2C0.01%2C0.03%2C0.1&seed=0&scrub=1" in links
    assert "./ablations?model=challenge-cnn&layer=fc1&template=train%3A6" in links
    assert "./dictionaries?model=challenge-cnn&layer=fc1&sae=fc1-topk512" in links


def test_the_dictionary_step_shows_the_cores_separation_of_the_detectors(expected, bundled):
    band, _, _ = expected
    neurons, latents = w.detector_separation(bundled(w.MODEL), band)
    at = open_page(model=w.MODEL)
    table = next(df.value for df in at.dataframe if "latents" in df.value.columns)
    for column, split in (("neurons", neurons), ("latents", latents)):
        shown_column = table[column].astype(str).tolist()
        assert shown_column[0] == f"{split.alive} of {split.units}"
        assert shown_column[1:3] == [str(split.below), str(split.above)]
        assert shown_column[3] == f"{split.cross_talk:.1%}"
        assert shown_column[5] == f"{split.units_for_90:.1f}"
    assert 0 <= latents.cross_talk <= 1 and 0 <= neurons.cross_talk <= 1
    assert neurons.units == 200 and latents.units == 512
    verdict = "Yes, by these measures" if latents.cross_talk < neurons.cross_talk else "Not by these measures"
    assert verdict in shown(at)


@pytest.mark.parametrize("other", ["mlp-1x64", "cnn-digits"])
def test_it_studies_the_challenge_network_whatever_model_is_active(other, expected):
    band, _, _ = expected
    at = open_page(model=other)
    assert not at.exception
    assert any(f"the model picked in the sidebar (`{other}`) is not used here" in i.value for i in at.info)
    assert metric(at, "Fitted band") == f"{band.rule.low:.4g} < s < {band.rule.high:.4g}"
    at = reveal(at)
    assert CHALLENGE_LABEL_FUNCTION["note"] in shown(at)
    assert at.query_params["model"] == other  # the sidebar's choice is left alone


# -- in a real browser --------------------------------------------------------------------------


@pytest.mark.browser
def test_reveal_in_a_browser(page, app_url):
    page.goto(f"{app_url}/walkthrough")
    wait_for_app(page, 300_000)
    assert_no_exception(page)
    page.get_by_text("6. Unit groups and causal scrubbing").wait_for(timeout=60_000)
    page.get_by_text("Causal scrubbing of fc1 on 60,000 training images").first.wait_for(timeout=60_000)
    assert "-33.93" not in page.content()
    page.get_by_role("button", name="Reveal the answer").click()
    page.get_by_text(re.compile(r"label 0 when -33\.93 < sum")).wait_for(timeout=60_000)
    wait_for_app(page, 120_000)
    assert_no_exception(page)
    assert "-15.22" in page.content()


def test_a_zoo_without_the_challenge_network_gets_a_message_not_a_crash(tmp_zoo):
    shutil.copytree(REPO / "models" / "mlp-1x64", tmp_zoo / "mlp-1x64")
    loaders.zoo_changed()  # the zoo listing is cached for a few seconds
    try:
        at = open_page()
        assert not at.exception
        assert any(f"`{w.MODEL}` is not in this model zoo" in e.value for e in at.error)
        assert not at.header
    finally:
        loaders.zoo_changed()


def test_the_scrubbing_link_opens_the_same_sweep_on_the_hypothesis_page(expected):
    """The step-6 link carries every setting: the Hypothesis page fits the same band and gets the same sweep."""
    _, sweep, _ = expected
    links = " ".join(m.value for m in open_page(model=w.MODEL).markdown)
    query = re.search(r"\(\./hypothesis\?([^)]*scrub=1[^)]*)\)", links).group(1)
    at = AppTest.from_file(APP, default_timeout=300)
    for key, values in parse_qs(query).items():
        at.query_params[key] = values[0]
    at.switch_page("app_pages/hypothesis.py")
    at.run()
    assert not at.exception
    plot = next(spec for title, spec in figures(at).items() if title.startswith("Causal scrubbing of fc1"))
    np.testing.assert_array_equal(array(plot["data"][0]["y"]), sweep.preserved)
