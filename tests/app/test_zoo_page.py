"""The model zoo page, in AppTest and in a real browser."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from ..conftest import BUNDLED_MODELS
from .conftest import assert_no_exception, wait_for_app

APP = "../../app.py"


def _run(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def test_zoo_lists_every_bundled_model_with_its_card():
    at = _run()
    assert not at.exception
    table = at.dataframe[0].value
    assert set(BUNDLED_MODELS) <= set(table["model"])
    assert at.selectbox(key="model").value == "mlp-1x64"
    assert any("Card: mlp-1x64" in h.value for h in at.subheader)


def test_hidden_label_function_is_not_shown():
    at = _run(model="challenge-cnn")
    assert not at.exception
    shown = " ".join(str(j.value) for j in at.json)
    assert "-33.93" not in shown and "15.22" not in shown
    assert "secret" in " ".join(str(v) for v in at.dataframe[0].value["trained on"])


@pytest.mark.browser
def test_zoo_page_in_a_real_browser(page, app_url):
    page.goto(f"{app_url}/?model=cnn-digits")
    wait_for_app(page)
    assert_no_exception(page)
    assert page.get_by_text("Card: cnn-digits").is_visible()
    assert "model=cnn-digits" in page.url
