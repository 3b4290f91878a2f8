"""A model replaced in the zoo while the server runs is never shown with the old model's arrays.

Found by a user: after ``mechmnistic import --overwrite`` of a model the app
was serving, the Neuron Explorer showed the new network's bias beside the old
network's activation statistics (arrays cached by model name). The cached
arrays are keyed by the model's weights hash: this test replaces a model's
weights in the zoo between two sessions of one server process and checks
every number the page shows is the new model's.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

import mechmnistic
from mechmnistic.analysis.unit_behaviour import activation_distribution
from mechmnistic.paths import zoo_root

APP = "../../app.py"


def _neuron_page(unit: int) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["model"] = "mine"
    at.run()
    at.query_params.update({"layer": "layers.0", "unit": str(unit)})
    at.switch_page("app_pages/neuron_explorer.py").run()
    assert not at.exception, at.exception
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


@pytest.fixture
def fresh_caches():
    """Streamlit's caches empty before and after (the zoo listing would outlive the test's zoo)."""
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


def test_a_replaced_model_gets_its_own_arrays(tmp_path, monkeypatch, fresh_caches):
    zoo = tmp_path / "zoo"
    shutil.copytree(zoo_root() / "mlp-1x64", zoo / "mlp-1x64")
    monkeypatch.setenv("MECHMNISTIC_MODELS", str(zoo))
    monkeypatch.setenv("MECHMNISTIC_CACHE", str(tmp_path / "cache"))
    original = mechmnistic.load_model("mlp-1x64", zoo=zoo)
    mechmnistic.save_model(original, original.card.__class__(**{**original.card.__dict__, "name": "mine"}), zoo=zoo)
    before = _metrics(_neuron_page(3))

    replaced = mechmnistic.load_model("mine", zoo=zoo)
    with torch.no_grad():  # another network under the same name: its hidden layer shifted
        replaced.get_submodule("layers.0").bias.sub_(0.5)
    mechmnistic.save_model(replaced, replaced.card, zoo=zoo, overwrite=True)
    st.cache_data.clear()  # the zoo's listing and cards are re-read after a few seconds anyway

    after = _metrics(_neuron_page(3))
    new = activation_distribution(mechmnistic.load_model("mine", zoo=zoo), "layers.0", 3)
    assert after["Bias"] != before["Bias"]
    assert after["Fires on"] == f"{new.firing_fraction:.1%}" != before["Fires on"]
    assert after["Max activation"] == f"{new.max:.3g}"
    assert np.isfinite(new.max)
