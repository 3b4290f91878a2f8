"""Every page of the app on every bundled model and on a privately imported one: no exception, the key content
(on the two explorers, in each of their tabs).

The pages are read from the list ``app.py`` builds its navigation from
(``ui.page_list``), so a page registered later without a line here fails
``test_every_registered_page_is_covered``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import streamlit as st
from safetensors.torch import save as safetensors_save
from streamlit.testing.v1 import AppTest

import mechmnistic
from ui.links import (
    ACTIVATIONS,
    CLASSIFY_PANEL_PARAM,
    CLUSTERS,
    EARLIER,
    EFFECTS,
    IMPORTANT,
    LATENTS,
    NEURON_VIEW_PARAM,
    NEURON_VIEWS,
    ON_INPUT,
    READS,
    TOP_EXAMPLES,
)
from ui.page_list import PAGES
from ui.tabs import Tab

from ..conftest import BUNDLED_MODELS
from .tabs import open_tab

APP = "../../app.py"
REGISTERED = [page.path for page in PAGES]
#: cnn-digits' weights as a user's ``nn.Sequential`` would save them (a conv at 0 and 3, linears at 0 and 2).
SEQUENTIAL_NAMES = {"conv1": "features.0", "conv2": "features.3", "fc1": "classifier.0", "fc2": "classifier.2"}


def _charts(at: AppTest) -> set[str]:
    return {chart.key for chart in at.get("plotly_chart")}


def _zoo(at: AppTest, model) -> None:
    assert at.title[0].value == "Model zoo"
    assert any(h.value == f"Card: {model.card.name}" for h in at.subheader)


#: A chart only each Neuron Explorer tab draws: the open tab's is there, no other's.
NEURON_TAB_CHARTS = {READS: "nx_fig_hist", ON_INPUT: "nx_fig_input", TOP_EXAMPLES: "nx_fig_top",
                     CLUSTERS: "nx_fig_clusters"}


def _tabs(at: AppTest, key: str, tabs: list[Tab]) -> dict[Tab, set[str]]:
    """Each tab opened in turn (the first is open on arrival): the charts it shows."""
    assert [tab.label for tab in at.tabs] == [tab.label for tab in tabs]
    assert at.session_state[key] == tabs[0].label, "the first tab is open on arrival"
    return {tab: _charts(at if tab == tabs[0] else open_tab(at, key, tab, tabs[0])) for tab in tabs}


def _neuron(at: AppTest, model) -> None:
    first = model.layer_names[0]
    conv = model.layout[first].is_conv
    assert at.header[0].value == f"{first} · {'channel' if conv else 'neuron'} 0"
    shown = _tabs(at, NEURON_VIEW_PARAM, list(NEURON_VIEWS))
    for tab, charts in shown.items():
        assert charts & set(NEURON_TAB_CHARTS.values()) == {NEURON_TAB_CHARTS[tab]}, f"{tab}: its chart, no other tab's"
    assert "nx_fig_classes" in shown[READS]
    assert "nx_fig_embedding" in shown[ON_INPUT]
    if conv:
        assert "nx_fig_filters" in shown[READS] and any(key.startswith("nx_fig_map_") for key in shown[ON_INPUT])
    else:
        assert "nx_fig_in" in shown[READS]
    open_tab(at, NEURON_VIEW_PARAM, TOP_EXAMPLES, READS)  # whose caption states the check
    gap = next(c.value for c in at.caption if "largest difference over the" in c.value)
    assert float(gap.rsplit(": ", 1)[1].split(")")[0]) < 1e-4, "embeddings add up to the pre-activations"


def _classify(at: AppTest, model) -> None:
    assert any(m.value.startswith("#### Predicted class") for m in at.markdown)
    earlier = {f"classify_attr_{layer}" for layer in model.layer_names[:-2]}
    # A combined embedding needs neurons feeding the logits (conv maps feeding them have none: the page says so).
    combined = {"classify_combined"} if not model.layout.feeds_logits.is_conv else set()
    latents = {"classify_latent_effects"} if model.card.name in ("mlp-1x64", "challenge-cnn") else set()
    own = {EFFECTS: {"classify_effects"}, IMPORTANT: combined, ACTIVATIONS: {"classify_activations"},
           EARLIER: earlier, LATENTS: latents}  # charts only that tab draws (none where a tab does not apply)
    for tab, charts in _tabs(at, CLASSIFY_PANEL_PARAM, list(own)).items():
        assert charts & set().union(*own.values()) == own[tab], f"{tab}: all its own charts, no other tab's"


def _titled(title: str) -> Callable:
    def check(at: AppTest, model) -> None:
        assert at.title[0].value == title

    return check


def _titled_with_charts(title: str, *keys: str) -> Callable:
    def check(at: AppTest, model) -> None:
        assert at.title[0].value == title
        assert set(keys) <= _charts(at)

    return check


CHECKS = {
    "app_pages/zoo.py": _zoo,
    "app_pages/neuron_explorer.py": _neuron,
    "app_pages/classification_explorer.py": _classify,
    "app_pages/import_model.py": _titled("Import a model"),
    "app_pages/ablations.py": _titled("Attribution & ablations"),
    "app_pages/hypothesis.py": _titled("Hypothesis & causal scrubbing"),
    "app_pages/geometry.py": _titled_with_charts("Activation geometry", "geometry_scatter", "geometry_variance",
                                                 "geometry_bars"),
    "app_pages/feature_viz.py": _titled_with_charts("Feature visualisation", "features_grid"),
    "app_pages/dictionaries.py": _titled("Dictionaries"),
    "app_pages/walkthrough.py": _titled_with_charts("Walkthrough: the challenge", "walkthrough_pca",
                                                    "walkthrough_features", "walkthrough_sweep"),
}


def test_every_registered_page_is_covered():
    assert len(REGISTERED) >= 6
    assert set(REGISTERED) <= set(CHECKS), "a page without a check in the matrix"


def _shown(at: AppTest, page: str, model) -> None:
    # As in the browser, where moving to another page leaves only the model in the URL; AppTest would
    # otherwise carry one page's parameters into the next (the ablations page's `units=dead`, say).
    at.query_params.clear()
    at.query_params["model"] = model.card.name
    at.switch_page(page).run()
    assert not at.exception, f"{page} on {model.card.name}: " + "\n".join(e.value for e in at.exception)
    CHECKS[page](at, model)


@pytest.mark.parametrize("page", REGISTERED)
@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_every_page_on_every_bundled_model(page, name, bundled):
    at = AppTest.from_file(APP, default_timeout=600)
    at.query_params["model"] = name
    at.run()
    assert at.session_state["active_model"] == name
    _shown(at, page, bundled(name))


@pytest.fixture(scope="module")
def imported_session():
    """A session holding cnn-digits' weights imported privately under Sequential names, reading inputs
    normalised as MNIST usually is: layers named ``features.0``, ... and a normalising first layer."""
    state = mechmnistic.load_model("cnn-digits").state_dict()
    renamed = {f"{SEQUENTIAL_NAMES[key.split('.')[0]]}.{key.split('.')[1]}": value for key, value in state.items()}
    at = AppTest.from_file(APP, default_timeout=600).run()
    at.switch_page("app_pages/import_model.py").run()
    data = safetensors_save({k: v.contiguous() for k, v in renamed.items()})
    at.file_uploader(key="import_upload").set_value(("my_cnn.safetensors", data, "application/octet-stream")).run()
    at.radio(key="import_normalization").set_value("mnist").run()
    # What its code says and its state dict does not: said on the page, so nothing is left to choose.
    at.selectbox(key="import_activation").set_value("relu").run()
    at.text_input(key="import_pool").set_value("max2").run()
    at.button(key="import_load").click().run()
    assert not at.exception
    name = at.session_state["active_model"]
    assert name.startswith("my_cnn@")
    model = at.session_state["private_models"][name]
    assert model.layer_names == tuple(SEQUENTIAL_NAMES.values())
    assert model.config.normalization.std != 1.0
    return at, model


#: Networks written as people write them, imported into a zoo of their own: tanh with average pooling and
#: padding (LeNet-5, from ONNX), folded BatchNorm and padding (from the state dict), strided convolutions
#: without pooling, and GELU (whose grounding is an approximation the pages must say is one).
IMPORTED = {"lenet5-padded": "onnx", "batchnorm-cnn": "state dict", "strided-cnn": "state dict",
            "gelu-mlp": "onnx"}


@pytest.fixture
def imported_zoo(imported_zoo_folder, monkeypatch):
    """The app's zoo is ``imported_zoo_folder`` for this test; Streamlit's cached zoo listing and cards are
    forgotten before and after (they would otherwise outlive the test by their time to live)."""
    monkeypatch.setenv("MECHMNISTIC_MODELS", str(imported_zoo_folder))
    st.cache_data.clear()
    yield imported_zoo_folder
    st.cache_data.clear()


@pytest.fixture(scope="module")
def imported_zoo_folder(tmp_path_factory):
    """A zoo holding the ``IMPORTED`` networks, briefly trained and imported as a user would (beside the default
    model and the challenge network, which the walkthrough always studies)."""
    import shutil

    from mechmnistic.models.importer import import_model
    from mechmnistic.paths import zoo_root

    from ..user_networks import BY_NAME, onnx_bytes, state_dict_bytes

    zoo = tmp_path_factory.mktemp("imported-zoo")
    for bundled_name in ("mlp-1x64", "challenge-cnn"):
        shutil.copytree(zoo_root() / bundled_name, zoo / bundled_name)
    for name, way in IMPORTED.items():
        network = BY_NAME[name]
        module = network.trained()
        if way == "onnx":
            import_model(f"{name}.onnx", name, "none", zoo=zoo, data=onnx_bytes(module))
        else:
            import_model(f"{name}.pt", name, "none", zoo=zoo, data=state_dict_bytes(module), **network.truth)
    return zoo


@pytest.mark.parametrize("page", REGISTERED)
@pytest.mark.parametrize("name", IMPORTED)
def test_every_page_on_imported_networks(page, name, imported_zoo):
    at = AppTest.from_file(APP, default_timeout=600)
    at.query_params["model"] = name
    at.run()
    assert at.session_state["active_model"] == name
    _shown(at, page, mechmnistic.load_model(name))


@pytest.mark.parametrize("page", REGISTERED)
def test_every_page_on_a_privately_imported_model(page, imported_session):
    at, model = imported_session
    _shown(at, page, model)
    assert at.session_state["active_model"] == model.card.name, "still the private model"


def test_the_imported_models_deeper_layers_in_the_neuron_explorer(imported_session):
    at, model = imported_session
    at.switch_page("app_pages/neuron_explorer.py")
    for layer, unit in (("features.3", 5), ("classifier.0", 7)):
        at.query_params.update({"layer": layer, "unit": str(unit), "top_k": "60", NEURON_VIEW_PARAM: ON_INPUT.slug})
        at.run()
        assert not at.exception and not at.warning
        assert at.session_state[NEURON_VIEW_PARAM] == ON_INPUT.label
        kind = "channel" if model.layout[layer].is_conv else "neuron"
        assert at.header[0].value == f"{layer} · {kind} {unit}"
        assert f"Which features.{'0' if layer == 'features.3' else '3'} units built this" in " ".join(
            m.value for m in at.markdown)


@pytest.mark.parametrize(("name", "layer", "activation"), [("gelu-mlp", "3", "gelu"), ("lenet5-padded", "7", "tanh")])
def test_pages_say_a_smooth_networks_grounding_is_an_approximation(name, layer, activation, imported_zoo):
    """Below these layers sits a GELU or a tanh (and LeNet's average pools), so their embeddings are gradient x
    input: the pages call it an approximation and show the residual, never "exact"."""
    at = AppTest.from_file(APP, default_timeout=600)
    at.query_params["model"] = name
    at.run()
    at.query_params.update({"layer": layer, "unit": "4", NEURON_VIEW_PARAM: ON_INPUT.slug, "test_index": "0"})
    at.switch_page("app_pages/neuron_explorer.py").run()
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "local linear approximation" in captions and "its residual is" in captions
    assert "exact gradient" not in captions
    assert any(f"With {activation} activations this network is not linear" in i.value for i in at.info)
    at.query_params.clear()
    at.query_params.update({"model": name, "test_index": "0", CLASSIFY_PANEL_PARAM: IMPORTANT.slug})
    at.switch_page("app_pages/classification_explorer.py").run()
    assert not at.exception
    combined = next(c.value for c in at.caption if "Approximate (gradient × input)" in c.value)
    assert "residual" in combined
