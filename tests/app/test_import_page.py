"""The import page in AppTest: upload, what was recognised, questions, private loading, saving, bad files."""

from __future__ import annotations

import re
import shutil

import pytest
import streamlit as st
from safetensors.torch import save as safetensors_save
from streamlit.testing.v1 import AppTest

import mechmnistic
from mechmnistic.paths import zoo_root

from ..conftest import snapshot
from ..test_importer import EISVIINet, _seeded
from .conftest import assert_no_exception, wait_for_app

APP = "../../app.py"
PAGE = "app_pages/import_model.py"


@pytest.fixture
def app_zoo(tmp_path, monkeypatch):
    """A zoo holding only mlp-1x64, used by the app under test; Streamlit's caches start empty."""
    zoo = tmp_path / "zoo"
    shutil.copytree(zoo_root() / "mlp-1x64", zoo / "mlp-1x64")
    monkeypatch.setenv("MECHMNISTIC_MODELS", str(zoo))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield zoo
    st.cache_data.clear()
    st.cache_resource.clear()


def _open(**params) -> AppTest:
    """A new session (as a new browser tab) on the default page."""
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def _session() -> AppTest:
    """A new session on the import page."""
    return _open().switch_page(PAGE).run()


def _safetensors(state) -> bytes:
    return safetensors_save({k: v.contiguous() for k, v in state.items()})


@pytest.fixture(scope="module")
def digit_mlp_bytes():
    """mlp-1x64's weights as a user would save them from their own module (fc1, fc2)."""
    state = mechmnistic.load_model("mlp-1x64").state_dict()
    return _safetensors({k.replace("layers.0", "fc1").replace("layers.1", "fc2"): v for k, v in state.items()})


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="import_upload").set_value((name, data, "application/octet-stream"))
    return at.run()


def _choose(at: AppTest, activation: str = "relu") -> AppTest:
    """Answer "which architecture is it?" as the network's code would: the candidate with this activation."""
    radio = at.radio(key="import_candidate")
    assert radio.value is None, "nothing is chosen for the user"
    index = next(i for i, label in enumerate(radio.options) if label.startswith(f"activation {activation} "))
    return radio.set_value(index).run()


def _loaded(at: AppTest) -> AppTest:
    """Choose ReLU (the file cannot tell it from GELU by accuracy) and load privately."""
    _choose(at)
    at.button(key="import_load").click().run()
    return at


def _text(at: AppTest) -> str:
    return " ".join(str(el.value) for kind in ("markdown", "caption", "success", "info") for el in getattr(at, kind))


def test_page_explains_itself_before_an_upload(app_zoo):
    at = _session()
    assert not at.exception
    assert at.title[0].value == "Import a model"
    assert "64 MiB" in _text(at) and "private to this browser session" in _text(at)
    assert at.file_uploader(key="import_upload").allowed_type == [".safetensors", ".pt", ".pth", ".bin", ".ckpt",
                                                                  ".onnx"]


def test_upload_shows_the_architecture_asks_and_loads_privately(app_zoo, digit_mlp_bytes):
    zoo_before = snapshot(app_zoo)
    at = _upload(_session(), "my_mlp.safetensors", digit_mlp_bytes)
    assert not at.exception and not at.error
    assert "Layers: **fc1, fc2**" in _text(at) and "numbered attributes (fcN)" in _text(at)
    assert list(at.dataframe[0].value["layer"]) == ["fc1", "fc2"]
    # The normalisation that scores better on real digits is preselected ("none": mlp-1x64 reads raw pixels).
    assert at.radio(key="import_normalization").value == "none"
    # ReLU and GELU score alike on it: the page asks, listing every candidate with its accuracy, choosing none.
    assert any("cannot tell which architecture this is" in w.value for w in at.warning)
    candidates = at.dataframe[1].value
    assert {"relu", "gelu"} <= set(candidates["activation"]) and candidates["accuracy"].iloc[0] > 0.95
    assert "import_load" not in [b.key for b in at.button]
    _choose(at)
    assert any("the only architecture the names, shapes and your answers allow" in i.value for i in at.info)
    at.button(key="import_load").click().run()
    assert not at.exception
    private = [name for name in at.selectbox(key="model").options if "private" in name]
    assert len(private) == 1 and private[0].startswith("🔒 my_mlp@")
    name = at.session_state["active_model"]
    assert name.startswith("my_mlp@") and at.query_params["model"] == name
    assert "Loaded **" in " ".join(s.value for s in at.success)
    assert snapshot(app_zoo) == zoo_before  # a private import writes nothing to the shared zoo

    # Another session never sees it, not even by deep link.
    other = _open(model=name)
    assert not other.exception
    assert other.selectbox(key="model").value == "mlp-1x64"
    assert all("private" not in option for option in other.selectbox(key="model").options)
    assert any("imported privately in another browser session" in w.value for w in other.warning)


def test_other_pages_analyse_the_private_model_and_it_can_be_removed(app_zoo, digit_mlp_bytes):
    at = _loaded(_upload(_session(), "my_mlp.safetensors", digit_mlp_bytes))
    name = at.session_state["active_model"]
    at.switch_page("app_pages/zoo.py").run()
    assert not at.exception
    assert any(f"Card: {name}" in h.value for h in at.subheader)
    at.switch_page(PAGE).run()
    at.button(key=f"import_remove_{name}").click().run()
    assert not at.exception
    assert at.session_state["active_model"] == "mlp-1x64" and not at.session_state["private_models"]


def test_saving_puts_the_private_model_into_the_zoo(app_zoo, digit_mlp_bytes):
    at = _loaded(_upload(_session(), "my_mlp.safetensors", digit_mlp_bytes))
    private = at.session_state["active_model"]
    at.text_input(key=f"import_save_name_{private}").set_value("my-import").run()
    at.button(key="import_save").click().run()
    assert not at.exception and not at.error
    assert at.selectbox(key="model").value == "my-import"
    assert all("private" not in option for option in at.selectbox(key="model").options)
    card = mechmnistic.load_card("my-import")
    assert card.source == "imported from my_mlp.safetensors" and card.label_function == {"name": "digits"}
    assert card.metrics["test_accuracy"] == mechmnistic.load_card("mlp-1x64").metrics["test_accuracy"]
    assert mechmnistic.load_model("my-import").layer_names == ("fc1", "fc2")


@pytest.mark.parametrize("zoo_name, message", [("mlp-1x64", "already exists"), ("../evil", "not a valid model name")])
def test_saving_under_a_taken_or_bad_name_is_refused(app_zoo, digit_mlp_bytes, zoo_name, message):
    at = _loaded(_upload(_session(), "my_mlp.safetensors", digit_mlp_bytes))
    before = snapshot(app_zoo)
    private = at.session_state["active_model"]
    at.text_input(key=f"import_save_name_{private}").set_value(zoo_name).run()
    at.button(key="import_save").click().run()
    assert not at.exception
    assert any(message in e.value for e in at.error)
    assert snapshot(app_zoo) == before and at.session_state["active_model"] == private


def test_the_eis_vii_network_needs_no_answers(app_zoo):
    at = _upload(_session(), "challenge.safetensors", _safetensors(_seeded(EISVIINet).state_dict()))
    assert not at.exception
    assert any("Recognised as the EIS VII challenge network" in s.value for s in at.success)
    assert len(at.radio) == 0
    at.button(key="import_load").click().run()
    assert at.session_state["active_model"].startswith("challenge@")


# Bad files (empty, huge, truncated, code payloads, NaN, shapes): tests/hardening/test_hostile_uploads.py.


def test_a_custom_normalisation_is_applied(app_zoo, digit_mlp_bytes):
    at = _upload(_session(), "my_mlp.safetensors", digit_mlp_bytes)
    at.radio(key="import_normalization").set_value("custom").run()
    at.number_input(key="import_mean").set_value(0.25).run()
    at.number_input(key="import_std").set_value(2.0).run()
    at.selectbox(key="import_activation").set_value("relu").run()  # said, so nothing is left to choose
    at.button(key="import_load").click().run()
    assert not at.exception
    norm = at.session_state["private_models"][at.session_state["active_model"]].config.normalization
    assert (norm.mean, norm.std) == (0.25, 2.0)


# -- in a real browser --------------------------------------------------------------------------------------



def _picker(page):
    """The sidebar model picker (a combobox whose input holds the chosen option's label)."""
    return page.locator("[data-testid='stSidebar']").get_by_role("combobox", name="Model")


@pytest.mark.browser
def test_upload_in_a_browser_stays_private_until_saved(page, browser, app_with_tmp_zoo, tmp_path, digit_mlp_bytes):
    from urllib.parse import parse_qs, quote, urlparse

    base, zoo = app_with_tmp_zoo
    weights = tmp_path / "my_mlp.safetensors"
    weights.write_bytes(digit_mlp_bytes)

    page.goto(f"{base}/import")
    wait_for_app(page)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(weights))
    main = page.locator("[data-testid='stMain']")
    main.get_by_text("What was recognised").wait_for(timeout=60_000)
    wait_for_app(page)
    shown = main.inner_text()
    assert "Layers: fc1, fc2" in shown and "Naming scheme: numbered attributes (fcN)" in shown
    main.get_by_text("Which architecture is it?").wait_for(timeout=60_000)
    main.get_by_text(re.compile(r"^activation relu \(")).click()
    main.get_by_text("the only architecture the names, shapes and your answers allow").wait_for(timeout=60_000)
    wait_for_app(page)
    page.get_by_role("button", name="Load privately into this session").click()
    page.get_by_text("privately into this session: every page now analyses it").wait_for(timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)
    private = parse_qs(urlparse(page.url).query)["model"][0]
    assert private.startswith("my_mlp@")
    assert _picker(page).input_value() == f"🔒 {private} (private)"
    page.screenshot(path=str(tmp_path / "import-loaded.png"), full_page=True)

    # A second browser context is another session: it neither lists nor opens the private model.
    context = browser.new_context()
    try:
        other = context.new_page()
        other.goto(f"{base}/?model={quote(private)}")
        wait_for_app(other)
        assert_no_exception(other)
        assert other.get_by_text("was imported privately in another browser session").is_visible()
        assert _picker(other).input_value() == "mlp-1x64"
        _picker(other).click()
        other.get_by_role("option").first.wait_for()
        options = other.get_by_role("option").all_inner_texts()
        assert options and not any("my_mlp" in option for option in options)
    finally:
        context.close()
    assert sorted(p.name for p in zoo.iterdir()) == ["mlp-1x64"]

    # Saving on purpose puts it into the zoo, where the zoo page shows it.
    name_box = page.get_by_role("textbox", name="Name in the zoo")
    name_box.fill("my-import")
    name_box.press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="Save to the model zoo").click()
    page.get_by_text("Saved my-import into the model zoo").wait_for(timeout=60_000)
    wait_for_app(page)
    assert (zoo / "my-import" / "card.json").is_file()
    page.get_by_role("link", name="Model zoo").click()
    page.get_by_text("Card: my-import").wait_for(timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)
    page.screenshot(path=str(tmp_path / "zoo-after-save.png"), full_page=True)
